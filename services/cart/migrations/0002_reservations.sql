-- Stock accounting: initial = on hand (products.stock) + reserved + sold. initial_stock
-- moves only when an admin sets the stock on hand.
ALTER TABLE products ADD COLUMN initial_stock integer NOT NULL DEFAULT 0 CHECK (initial_stock >= 0);
UPDATE products SET initial_stock = stock;

-- One row per order that asked for stock: its outcome is stored, so repeating the same
-- call answers the first result. RESERVED moves once to SOLD or RELEASED.
CREATE TABLE stock_orders (
    order_id uuid PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('RESERVED', 'REJECTED', 'SOLD', 'RELEASED')),
    outcome jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reservation_lines (
    order_id uuid NOT NULL REFERENCES stock_orders (order_id),
    product_id text NOT NULL REFERENCES products (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);
