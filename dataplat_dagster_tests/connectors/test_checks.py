"""The first steps every connector shares: name resolution and TCP connect, including a
server that never answers (a listener whose accept queue is full drops new SYNs)."""

import socket

import pytest

from dataplat_dagster.connectors.checks import StepFailed, resolve_host, tcp_connect
from dataplat_dagster.connectors.models import FtpConnectorSpec
from dataplat_dagster.connectors.registry import open_connector
from dataplat_dagster_tests.servers.ports import free_port


@pytest.fixture
def stalled_port():
    """A port on 127.0.0.1 that accepts no connection: connects there time out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    yield port
    for sock in (*fillers, server):
        sock.close()


def test_a_server_that_never_answers_times_out_with_the_time_waited(stalled_port):
    with pytest.raises(StepFailed) as raised:
        tcp_connect("127.0.0.1", stalled_port, 0.4)
    assert str(raised.value).startswith(f"no answer from 127.0.0.1:{stalled_port} after 0.4 s")


def test_refused_and_resolved(tmp_path):
    port = free_port()
    with pytest.raises(StepFailed, match=f"connection to 127.0.0.1:{port} refused: nothing listens on that port"):
        tcp_connect("127.0.0.1", port, 1)
    assert resolve_host("localhost", 80).startswith("localhost is ")
    with pytest.raises(StepFailed, match="cannot resolve the host name 'no-such-host.invalid'"):
        resolve_host("no-such-host.invalid", 21)


def test_a_connector_check_stops_at_connect_when_the_server_does_not_answer(stalled_port, tmp_path):
    spec = FtpConnectorSpec(host="127.0.0.1", port=stalled_port, timeout_s=0.4)
    with open_connector("drop", spec, tmp_path) as connector:
        report = connector.check()
    assert [(step.step, step.outcome) for step in report.steps] == [("resolve", "passed"), ("connect", "failed")]
    assert "after 0.4 s" in report.steps[1].message
    assert report.steps[1].seconds >= 0.3  # the step reports the time it waited
