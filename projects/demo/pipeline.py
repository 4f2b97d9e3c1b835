"""The demo's typical pipeline: import from a datasource, transform, predict, export.

    shop_orders (datasource: external/shop.db)     customers (uploaded file)
          │                                              │
    orders_raw ──► orders_valid ──► orders_enriched ◄────┘
                   (filter, derived    (join)
                    column)               │
                                    orders_scored (a model trained here adds a prediction)
                                          │
                                    export_scored_orders ──► scored_orders_out (exporter:
                                                             timestamped table in shop.db)

Every step but the last is a dataset (``dataplat dataset list`` shows them, origin
``pipeline_intermediate``; ``orders_scored`` is the ``pipeline_output``); the last is the
exporter's terminal node.
"""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from dataplat_dagster import dataset_in, datasource_asset, pipeline_dataset

PROJECT = __file__
FEATURES = ["quantity", "express", "vip"]

orders_raw = datasource_asset("shop_orders", project=PROJECT, dataset="orders_raw", output="pandas",
                              description="The shop's orders, read from its database.")


@pipeline_dataset("orders_valid", project=PROJECT, ins={"orders": dataset_in("orders_raw", project=PROJECT)})
def orders_valid(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders that were not cancelled, with their amount (a derived column)."""
    valid = orders[orders["status"] != "cancelled"].copy()
    valid["amount"] = (valid["quantity"] * valid["unit_price"]).round(2)
    return valid


@pipeline_dataset(
    "orders_enriched", project=PROJECT,
    ins={"orders": dataset_in("orders_valid", project=PROJECT), "customers": dataset_in("customers", project=PROJECT)},
)
def orders_enriched(orders: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Each order with its customer's city, segment and VIP flag (a join with an uploaded dataset)."""
    wanted = customers[["customer_id", "city", "segment", "vip"]]
    return orders.merge(wanted, on="customer_id", how="left", validate="many_to_one")


@pipeline_dataset("orders_scored", project=PROJECT, final=True, ins={"orders": dataset_in("orders_enriched", project=PROJECT)})
def orders_scored(context: AssetExecutionContext, orders: pd.DataFrame) -> pd.DataFrame:
    """Every order with its predicted delivery time: a least-squares model trained on the
    delivered orders, applied to all of them (the open ones are what it is for)."""
    features = orders[FEATURES].astype(float).fillna(0.0)
    design = np.column_stack([np.ones(len(features)), features.to_numpy()])
    known = orders["delivery_days"].notna().to_numpy()
    coefficients, *_ = np.linalg.lstsq(design[known], orders.loc[known, "delivery_days"].to_numpy(), rcond=None)
    scored = orders.copy()
    scored["predicted_delivery_days"] = (design @ coefficients).round(2)
    error = float(np.abs(scored.loc[known, "predicted_delivery_days"] - orders.loc[known, "delivery_days"]).mean())
    context.log.info(f"Model: days = {coefficients[0]:.2f} + " + " + ".join(f"{c:.2f}·{n}" for c, n in zip(coefficients[1:], FEATURES))
                     + f"; mean absolute error {error:.2f} days on {int(known.sum())} delivered orders.")
    return scored


@asset(
    key=["demo", "pipeline", "export_scored_orders"],
    group_name="demo",
    io_manager_key="scored_orders_out",
    ins={"scored": dataset_in("orders_scored", project=PROJECT)},
    kinds={"sqlite"},
)
def export_scored_orders(scored: pd.DataFrame) -> Output:
    """The scored orders, delivered to the shop's database through the exporter."""
    columns = ["order_id", "customer_id", "order_date", "status", "amount", "city", "segment", "predicted_delivery_days"]
    return Output(scored[columns], metadata={"columns": MetadataValue.json(columns)})


PIPELINE_ASSETS = [orders_raw, orders_valid, orders_enriched, orders_scored, export_scored_orders]
