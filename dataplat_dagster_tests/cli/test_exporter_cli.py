"""`dataplat exporter ...` end to end on SQLite, and the refusals of bad exporters."""

import sqlite3

import yaml


def make_connectors(ws) -> None:
    ws.run("connector", "create", "sql", "shop_db", "--dialect", "sqlite", "--database", "shop.db")
    ws.run("connector", "create", "s3", "lake", "--bucket", "some-bucket", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1")


def test_create_list_show_export_and_delete(cli_workspace):
    ws = cli_workspace
    make_connectors(ws)
    (ws.root / "sales.csv").write_text("id,total\n1,2.5\n2,4.0\n3,1.25\n")
    ws.run("dataset", "import", "sales.csv", "--name", "sales", "--no-profile")
    created = ws.run("exporter", "create", "preds", "--connector", "shop_db", "--mode", "timestamped", "--table", "predictions", "--retention", "3")
    assert "Created exporter 'preds': timestamped table predictions through connector 'shop_db'." in created.stdout
    ws.run("exporter", "create", "latest", "--connector", "shop_db", "--mode", "overwrite", "--table", "latest sales")
    ws.run("exporter", "create", "files", "--connector", "lake", "--mode", "overwrite", "--path", "out/sales.csv")
    saved = yaml.safe_load((ws.project_dir / "dataplat.yaml").read_text())["exporters"]
    assert saved["preds"] == {"connector": "shop_db", "mode": "timestamped", "table": "predictions", "retention": 3, "on_dependents": "refuse", "datasets": []}

    listed = ws.run("exporter", "list", "--json").json()
    assert [(e["name"], e["mode"], e["target"], e["format"]) for e in listed] == [
        ("files", "overwrite", "out/sales.csv", "csv"), ("latest", "overwrite", "latest sales", None), ("preds", "timestamped", "predictions", None)]
    assert ws.run("exporter", "show", "preds", "--json").json()["written"] == []

    done = ws.run("dataset", "export", "sales", "--exporter", "preds", "--json").json()
    assert (done["rows"], done["mode"], done["dataset"]) == (3, "timestamped", "sales")
    assert done["exported_to"].startswith("predictions_") and len(done["exported_to"]) == len("predictions_20261201_063000")
    ws.run("dataset", "export", "sales", "--exporter", "latest")
    with sqlite3.connect(ws.project_dir / "shop.db") as db:
        assert db.execute(f'SELECT id, total FROM "{done["exported_to"]}" ORDER BY id').fetchall() == [(1, 2.5), (2, 4.0), (3, 1.25)]
        assert db.execute('SELECT count(*) FROM "latest sales"').fetchone() == (3,)
    shown = ws.run("exporter", "show", "preds", "--json").json()
    assert shown["written"] == [{"name": done["exported_to"], "rows": 3}] and shown["datasets"] == ["sales"]
    assert done["exported_to"] in ws.run("exporter", "show", "preds").stdout

    ws.run("exporter", "delete", "latest", "--yes")
    assert [e["name"] for e in ws.run("exporter", "list", "--json").json()] == ["files", "preds"]
    with sqlite3.connect(ws.project_dir / "shop.db") as db:  # what it wrote stays
        assert db.execute('SELECT count(*) FROM "latest sales"').fetchone() == (3,)
    refused = ws.run("connector", "delete", "shop_db", "--yes", check=False)
    assert refused.code == 1 and "exporter 'preds'" in refused.stderr


def test_bad_exporters_are_refused_with_the_reason(cli_workspace):
    ws = cli_workspace
    make_connectors(ws)
    cases = {
        ("--connector", "nope", "--mode", "overwrite", "--table", "t"): "names the connector 'nope', which does not exist",
        ("--connector", "shop_db", "--mode", "overwrite", "--path", "x.csv"): "writes a path, but 'shop_db' is a SQL connector",
        ("--connector", "lake", "--mode", "overwrite", "--table", "t"): "writes a table, but 'lake' is a s3 connector",
        ("--connector", "shop_db", "--mode", "overwrite", "--table", "t", "--retention", "2"): "retention applies to mode timestamped",
        ("--connector", "shop_db", "--mode", "overwrite", "--table", 'x"; DROP TABLE t; --'): "contains '\"' ';'",
        ("--connector", "shop_db", "--mode", "sometimes", "--table", "t"): "'sometimes' is not one of 'overwrite', 'timestamped'",
        ("--connector", "lake", "--mode", "overwrite", "--path", "out/"): "names a folder",
    }
    for flags, words in cases.items():
        result = ws.run("exporter", "create", "bad", *flags, check=False)
        assert result.code == 2 and words in result.stderr and "Traceback" not in result.stderr, (flags, result.stderr)
    taken = ws.run("exporter", "create", "shop_db", "--connector", "shop_db", "--mode", "overwrite", "--table", "t", check=False)
    assert taken.code == 2 and "has the name of a connector" in taken.stderr
    (ws.root / "a.csv").write_text("a\n1\n")
    ws.run("dataset", "import", "a.csv", "--name", "a", "--no-profile")
    missing = ws.run("dataset", "export", "a", "--exporter", "nope", check=False)
    assert missing.code == 1 and "Project 'shop' has no exporter 'nope' (its exporters: none yet)." in missing.stderr
    assert "exporters" not in yaml.safe_load((ws.project_dir / "dataplat.yaml").read_text()) or \
        yaml.safe_load((ws.project_dir / "dataplat.yaml").read_text())["exporters"] == {}
