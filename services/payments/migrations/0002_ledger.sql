ALTER TABLE payments ADD COLUMN user_id uuid;
ALTER TABLE payments ADD COLUMN psp_charge_id text;
ALTER TABLE payments ADD COLUMN decline_reason text;
CREATE INDEX payments_user_idx ON payments (user_id, created_at DESC);

-- Double-entry ledger: every movement is a set of lines summing to zero.
CREATE TABLE ledger_lines (
    id bigserial PRIMARY KEY,
    payment_id uuid NOT NULL REFERENCES payments (id),
    account text NOT NULL,
    amount_cents bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
