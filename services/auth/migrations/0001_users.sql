-- Accounts. Emails are stored normalised (trimmed, lower-case), so a plain unique index
-- is enough to refuse duplicates.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    roles text[] NOT NULL DEFAULT ARRAY['customer'],
    created_at timestamptz NOT NULL DEFAULT now()
);
