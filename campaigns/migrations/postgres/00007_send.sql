-- A send writes three public tokens per invitation. Each row's foreign key
-- to customers took a key-share lock on the customer's row (and the
-- invitation's key already leads to that customer, whose deletion cascades
-- through invitations to their tokens). Tokens are only written by Claim and
-- the follow-ups, always with their invitation.

-- +goose Up
ALTER TABLE public_tokens DROP CONSTRAINT public_tokens_customer_id_fkey;

-- +goose Down
DELETE FROM public_tokens t WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = t.customer_id);
ALTER TABLE public_tokens ADD CONSTRAINT public_tokens_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE;
