-- A payment whose order could not be fulfilled is refunded in full at the processor.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'REFUNDED'));
ALTER TABLE payments ADD COLUMN psp_refund_id text;
CREATE INDEX payments_user_page_idx ON payments (user_id, created_at DESC, id DESC);
