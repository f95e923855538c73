-- One payment per order at most: the unique order_id is what makes a second charge
-- impossible, whatever retries or redeliveries happen upstream.
CREATE TABLE payments (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL UNIQUE,
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    currency char(3) NOT NULL,
    status text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    created_at timestamptz NOT NULL DEFAULT now()
);
