"""Customer data: one `CustomerStore` protocol, SQLite locally and Cosmos DB on Azure.

The app asks for exactly one customer, by the id its caller passes, and gets only that
customer's record and orders. Customer data never enters the search index.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Protocol

from contoso_chat import records
from contoso_chat.backends.azure_credentials import azure_credential
from contoso_chat.backends.settings import ConfigError, Settings
from contoso_chat.paths import build_dir
from contoso_chat.records import Customer

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL, email TEXT NOT NULL,
    phone TEXT NOT NULL, street TEXT NOT NULL, city TEXT NOT NULL, state TEXT NOT NULL, zip TEXT NOT NULL,
    country TEXT NOT NULL, membership TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL, unit_price REAL NOT NULL, total REAL NOT NULL, date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders(customer_id);
"""


class CustomerStore(Protocol):
    """Looks up one customer by id."""

    def get(self, customer_id: str) -> Customer | None:
        ...

    def private_details(self) -> dict[str, list[str]]:
        """Per customer id, the strings that identify that customer (for the output guard)."""
        ...


def identifying_strings(customer: Customer) -> list[str]:
    """Strings that must never reach another customer: street, email, phone, full name, order ids."""
    return [customer.unique_detail, customer.address.street, customer.email, customer.phone,
            customer.full_name, *(o.order_id for o in customer.orders)]


class SqliteCustomerStore:
    """Customers and orders in a SQLite file under build/."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path)
        connection.row_factory = sqlite3.Row
        return connection

    def load(self, customers: list[Customer]) -> int:
        """Insert or replace every customer and order (a rerun never duplicates); return the customer count."""
        with self._connect() as db:
            db.executescript(SCHEMA)
            for c in customers:
                db.execute("DELETE FROM orders WHERE customer_id = ?", (c.id,))
                db.execute(
                    "INSERT OR REPLACE INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (c.id, c.first_name, c.last_name, c.email, c.phone, c.address.street, c.address.city,
                     c.address.state, c.address.zip, c.address.country, c.membership),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(o.order_id, c.id, o.product_id, o.quantity, o.unit_price, o.total, o.date) for o in c.orders],
                )
            return db.execute("SELECT COUNT(*) FROM customers").fetchone()[0]

    def count(self) -> int:
        """Customers in the store (0 when the file does not exist yet)."""
        if not self.path.exists():
            return 0
        with self._connect() as db:
            try:
                return db.execute("SELECT COUNT(*) FROM customers").fetchone()[0]
            except sqlite3.OperationalError:
                return 0

    def get(self, customer_id: str) -> Customer | None:
        """One customer with their orders, or None; the id is a bound parameter, never SQL text."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM customers WHERE id = ?", (customer_id,)).fetchone()
            if row is None:
                return None
            orders = db.execute(
                "SELECT order_id, product_id, quantity, unit_price, total, date FROM orders "
                "WHERE customer_id = ? ORDER BY date, order_id", (customer_id,),
            ).fetchall()
        record = dict(row)
        address = {k: record.pop(k) for k in ("street", "city", "state", "zip", "country")}
        return Customer.model_validate({**record, "address": address, "orders": [dict(o) for o in orders]})

    def private_details(self) -> dict[str, list[str]]:
        with self._connect() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM customers")]
        return {cid: identifying_strings(self.get(cid)) for cid in ids}


class CosmosCustomerStore:
    """Customers as JSON documents in a Cosmos DB container partitioned by /id."""

    def __init__(self, container) -> None:
        self.container = container

    def load(self, customers: list[Customer]) -> int:
        """Upsert every customer document (idempotent; provisioning only, it needs a write role or the key)."""
        for customer in customers:
            self.container.upsert_item(json.loads(customer.model_dump_json()))
        return len(customers)

    def get(self, customer_id: str) -> Customer | None:
        """A point read by id and partition key: one customer, never a query over text."""
        from azure.cosmos.exceptions import CosmosResourceNotFoundError

        try:
            item = self.container.read_item(item=customer_id, partition_key=customer_id)
        except CosmosResourceNotFoundError:
            return None
        return Customer.model_validate({k: v for k, v in item.items() if not k.startswith("_")})

    def private_details(self) -> dict[str, list[str]]:
        items = self.container.query_items("SELECT * FROM c", enable_cross_partition_query=True)
        customers = [Customer.model_validate({k: v for k, v in i.items() if not k.startswith("_")}) for i in items]
        return {c.id: identifying_strings(c) for c in customers}


def cosmos_client(settings: Settings, transport=None):
    """A Cosmos DB client: the account key when COSMOS_KEY is set, otherwise Entra ID (managed identity on Azure)."""
    from azure.cosmos import CosmosClient

    credential = settings.secret("COSMOS_KEY") or azure_credential(settings.get("AZURE_CLIENT_ID"))
    options = {"transport": transport} if transport is not None else {}
    return CosmosClient(settings.get("COSMOS_ENDPOINT"), credential=credential, **options)


def open_cosmos_container(settings: Settings, transport=None):
    """The existing customers container, opened for reading (Cosmos DB Built-in Data Reader is enough)."""
    from azure.cosmos.exceptions import CosmosResourceNotFoundError

    database, name = settings.get("COSMOS_DATABASE"), settings.get("COSMOS_CONTAINER")
    container = cosmos_client(settings, transport).get_database_client(database).get_container_client(name)
    try:
        container.read()
    except CosmosResourceNotFoundError:
        raise ConfigError(f"The Cosmos DB container {database}/{name} does not exist. Load it once with "
                          "`python -m contoso_chat.azure.data_load` and PROVISION_AZURE=true (or notebook 01), "
                          "or set CUSTOMERS_BACKEND=local.") from None
    return container


def create_container_with_key(settings: Settings, transport=None):
    """Create the database and container if missing, through the data plane. Only an account key may do this:
    Entra ID identities cannot create databases in Cosmos DB (provisioning uses the management plane then)."""
    from azure.cosmos import PartitionKey

    if not settings.secret("COSMOS_KEY"):
        raise ConfigError("Creating a Cosmos DB database through the data plane needs COSMOS_KEY; without it, "
                          "provisioning creates it through the management plane (contoso_chat.azure.data_load).")
    client = cosmos_client(settings, transport)
    database = client.create_database_if_not_exists(settings.get("COSMOS_DATABASE"))
    return database.create_container_if_not_exists(id=settings.get("COSMOS_CONTAINER"),
                                                   partition_key=PartitionKey(path="/id"))


def ensure_customers(settings: Settings, path: Path | None = None) -> CustomerStore:
    """The customer store for the configured backend. Locally it is loaded from data/customers (idempotent);
    on Azure the container is only opened (loading it is provisioning: `python -m contoso_chat.azure.data_load`)."""
    if settings.customers == "azure":
        return CosmosCustomerStore(open_cosmos_container(settings))
    store = SqliteCustomerStore(path or build_dir() / "customers.sqlite")
    store.load(list(records.customers()))
    return store
