"""The freshness experiment: a copy of the data set in which one product's price changed, to see who notices."""

from __future__ import annotations

import shutil
from pathlib import Path

from contoso_chat import records
from contoso_chat.paths import data_dir


def copy_with_new_price(product_id: int, new_price: float, into: Path) -> Path:
    """A copy of data/ under `into` where the product's price is `new_price` in the catalog and in its manual."""
    target = into / "data"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(data_dir(), target)
    product = records.product_by_id(product_id)
    old, new = f"{product.price:.2f}", f"{new_price:.2f}"
    catalog = target / "products" / "products.csv"
    lines = catalog.read_text(encoding="utf-8").splitlines(keepends=True)
    catalog.write_text("".join(line.replace(f",{old},", f",{new},", 1) if line.startswith(f"{product_id},") else line
                               for line in lines), encoding="utf-8")
    manual = next(p for p in (target / "products" / "manuals").glob(f"{product_id}-*.md"))
    manual.write_text(manual.read_text(encoding="utf-8").replace(f"${old}", f"${new}"), encoding="utf-8")
    changed = records.products.__wrapped__(target)  # the loader, uncached: check the copy reads as intended
    if next(p for p in changed if p.id == product_id).price != new_price:
        raise ValueError(f"The catalog row of product {product_id} did not take the new price; check products.csv.")
    return target
