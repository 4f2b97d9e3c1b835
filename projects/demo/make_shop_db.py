"""Create the demo's "external database": ``external/shop.db``, a SQLite file with the
shop's orders, standing for the database a real project would read from.

Deterministic (a fixed seed), so every `make demo` starts from the same orders. Running it
again replaces the orders table and keeps the tables the pipeline exported.
"""

import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path

DATABASE = Path(__file__).parent / "external" / "shop.db"
ORDERS = 5000
CUSTOMERS = 300  # the customer ids of samples/customers.csv


def main() -> None:
    DATABASE.parent.mkdir(exist_ok=True)
    rng = random.Random(7)
    rows = []
    for order_id in range(1, ORDERS + 1):
        quantity = rng.randint(1, 20)
        express = int(rng.random() < 0.3)
        status = rng.choices(["delivered", "open", "cancelled"], weights=[80, 15, 5])[0]
        # Delivery takes longer for big orders and less with express shipping, plus noise.
        days = 2.0 + 0.25 * quantity - 1.5 * express + rng.gauss(0, 0.6)
        rows.append((
            order_id,
            rng.randint(1, CUSTOMERS),
            (date(2024, 1, 1) + timedelta(days=rng.randint(0, 365))).isoformat(),
            quantity,
            round(rng.uniform(2, 80), 2),
            express,
            status,
            round(max(days, 0.5), 1) if status == "delivered" else None,
        ))
    with sqlite3.connect(DATABASE) as db:
        db.execute("DROP TABLE IF EXISTS orders")
        db.execute(
            "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER, order_date TEXT, quantity INTEGER,"
            " unit_price REAL, express INTEGER, status TEXT, delivery_days REAL)"
        )
        db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    print(f"Wrote {ORDERS} orders to {DATABASE}.")


if __name__ == "__main__":
    main()
