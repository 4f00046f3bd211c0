"""Ingest never waits for settlement: submit-side counters in their own row, one call to accept

Submissions used to reserve money and hand out `seq` by updating the wallet row that settlement
batches hold `FOR NO KEY UPDATE`, so every accepted request could wait for a whole batch.
Now each side writes its own row:

- `wallet_counters` (submit side): the next `seq`, `reserved_total` (every amount ever reserved)
  and `last_used`. Only submissions (and a deposit's overpayment) write it.
- `wallets.released_total` (settle side): every reserved amount settlement has turned into spent
  money (a settled debit) or given back (a failure, a rejection, an expiry). Only settlement and
  the chain watchers write it, under the wallet lock they already take.

reserved = reserved_total − released_total, and available = balance − reserved. A submission
locks its counters row, then reads the wallet row's latest committed version: `balance +
released_total` never decreases (a debit moves money from balance to released, a failure only
adds to released, a credit only adds to balance), so an older version can only make available
look smaller, never larger — the check is never optimistic.

`accept_transactions` does the whole acceptance in one statement: claim the Idempotency-Key (or
return the stored one), resolve the counterparties, check and reserve, hand out `seq`, insert the
transactions and their audit entries. Refusals raise SQLSTATE `WL…` errors, which roll back
everything the call did; the message is the problem+json `code`.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CREATE_COUNTERS_ROW = """
CREATE FUNCTION create_wallet_counters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wallet_counters (wallet_id) VALUES (NEW.id);
    RETURN NEW;
END
$$
"""

ACCEPT = """
CREATE FUNCTION accept_transactions(
    p_kind text,
    p_debit_wallet uuid,
    p_debit_user uuid,
    p_lines jsonb,
    p_initiator uuid,
    p_shards int,
    p_parent uuid,
    p_refund_of uuid,
    p_refund_amount numeric,
    p_owner uuid,
    p_key text,
    p_fingerprint text,
    p_expires_at timestamptz,
    p_locked_until timestamptz,
    p_response_status int,
    p_response jsonb,
    p_request_id text,
    p_ip text
) RETURNS TABLE (
    key_id bigint,
    debit_wallet uuid,
    shard int,
    first_seq bigint,
    replay_status int,
    replay_body jsonb,
    replay_fingerprint text,
    replay_state text,
    replay_locked_until timestamptz
)
LANGUAGE plpgsql AS $$
DECLARE
    v_debit uuid := p_debit_wallet;
    v_parent uuid := p_parent;
    v_lines jsonb := p_lines;
    v_key bigint;
    v_n int;
    v_total numeric;
    v_last bigint;
    v_reserved numeric;
    v_wallet record;
    v_original record;
    v_remaining numeric;
    v_value numeric;
    v_missing text;
    v_address text;
    v_credit uuid;
    v_id bytea;
    v_shard int;
BEGIN
    -- 1. The Idempotency-Key: a new claim stores the final response at once (or, for a request
    --    that will wait for settlement, an in-flight marker); a live existing key is returned
    --    untouched for the caller to replay (or refuse), an expired one is taken over.
    IF p_owner IS NOT NULL THEN
        INSERT INTO idempotency_keys AS k
               (owner_id, key, fingerprint, state, response_status, response_body,
                transaction_id, locked_until, expires_at)
        VALUES (p_owner, p_key, p_fingerprint,
                CASE WHEN p_locked_until IS NULL THEN 'completed' ELSE 'in_flight' END,
                p_response_status, p_response, (p_response ->> 'transaction_id')::uuid,
                p_locked_until, p_expires_at)
        ON CONFLICT (owner_id, key) DO UPDATE
           SET fingerprint = EXCLUDED.fingerprint, state = EXCLUDED.state,
               response_status = EXCLUDED.response_status,
               response_body = EXCLUDED.response_body,
               transaction_id = EXCLUDED.transaction_id, locked_until = EXCLUDED.locked_until,
               expires_at = EXCLUDED.expires_at, created_at = now()
         WHERE k.expires_at <= now()
        RETURNING k.id INTO v_key;
        IF v_key IS NULL THEN
            RETURN QUERY
                SELECT NULL::bigint, NULL::uuid, NULL::int, NULL::bigint, k.response_status,
                       k.response_body, k.fingerprint, k.state, k.locked_until
                  FROM idempotency_keys k
                 WHERE k.owner_id = p_owner AND k.key = p_key;
            RETURN;
        END IF;
    END IF;

    -- 2. A refund: the original's credit pays back its debit, never beyond the original in
    --    total (pending refunds count); the original is locked so two refunds serialise.
    IF p_refund_of IS NOT NULL THEN
        SELECT t.kind, t.status, t.amount, t.debit_wallet_id, t.credit_wallet_id
          INTO v_original
          FROM transactions t WHERE t.id = p_refund_of FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'transaction_not_found';
        END IF;
        IF v_original.kind NOT IN ('transfer', 'service_fee')
           OR v_original.status <> 'completed' THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'not_refundable';
        END IF;
        v_remaining := v_original.amount - COALESCE(
            (SELECT sum(r.amount) FROM transactions r
              WHERE r.parent_id = p_refund_of AND r.kind = 'refund' AND r.status <> 'failed'), 0);
        v_value := COALESCE(p_refund_amount, v_remaining);
        IF v_value <= 0 OR v_value > v_remaining THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'refund_exceeds_original',
                  DETAIL = v_remaining::text;
        END IF;
        v_debit := v_original.credit_wallet_id;
        v_parent := p_refund_of;
        v_lines := jsonb_build_array(jsonb_build_object(
            'id', v_lines -> 0 ->> 'id',
            'credit_wallet', v_original.debit_wallet_id,
            'amount', v_value::text,
            'note', 'refund of ' || p_refund_of,
            'details', jsonb_build_object('refund_of', p_refund_of::text)));
    END IF;

    -- 3. The counterparties.
    IF v_debit IS NULL THEN
        SELECT w.id INTO v_debit FROM wallets w WHERE w.user_id = p_debit_user;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'recipient_not_found',
                  DETAIL = 'no user ' || p_debit_user;
        END IF;
    END IF;
    v_n := jsonb_array_length(v_lines);
    IF v_n = 1 THEN  -- the common case, without a query over the lines
        v_total := (v_lines -> 0 ->> 'amount')::numeric;
        IF v_lines -> 0 ? 'credit_user' THEN
            SELECT w.id INTO v_credit
              FROM wallets w WHERE w.user_id = (v_lines -> 0 ->> 'credit_user')::uuid;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'recipient_not_found',
                      DETAIL = 'no user ' || (v_lines -> 0 ->> 'credit_user');
            END IF;
            v_lines := jsonb_build_array(
                (v_lines -> 0) || jsonb_build_object('credit_wallet', v_credit));
        END IF;
    ELSE
        SELECT l ->> 'credit_user' INTO v_missing
          FROM jsonb_array_elements(v_lines) AS l
         WHERE l ? 'credit_user'
           AND NOT EXISTS (SELECT 1 FROM wallets w
                            WHERE w.user_id = (l ->> 'credit_user')::uuid)
         LIMIT 1;
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'recipient_not_found',
                  DETAIL = 'no user ' || v_missing;
        END IF;
        SELECT COALESCE(sum((l ->> 'amount')::numeric), 0),
               jsonb_agg(CASE WHEN l ? 'credit_user'
                              THEN l || jsonb_build_object('credit_wallet',
                                   (SELECT w.id FROM wallets w
                                     WHERE w.user_id = (l ->> 'credit_user')::uuid))
                              ELSE l END ORDER BY i)
          INTO v_total, v_lines
          FROM jsonb_array_elements(v_lines) WITH ORDINALITY AS x(l, i);
    END IF;

    -- 4. Reserve on the submit-side row, then check against the wallet's committed state.
    UPDATE wallet_counters c
       SET next_seq = c.next_seq + v_n, reserved_total = c.reserved_total + v_total,
           last_used = now()
     WHERE c.wallet_id = v_debit
    RETURNING c.next_seq, c.reserved_total INTO v_last, v_reserved;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'wallet_not_found';
    END IF;
    SELECT w.kind, w.balance, w.released_total, w.is_active, w.address INTO v_wallet
      FROM wallets w WHERE w.id = v_debit;
    IF NOT v_wallet.is_active THEN
        RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'wallet_inactive';
    END IF;
    IF v_wallet.kind <> 'external'
       AND v_wallet.balance - (v_reserved - v_wallet.released_total) < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'insufficient_balance',
              DETAIL = (v_wallet.balance - (v_reserved - v_total - v_wallet.released_total))::text,
              HINT = v_total::text;
    END IF;
    IF p_kind = 'withdrawal' THEN  -- sent to the address connected at the time of the request
        v_address := v_wallet.address;
        IF v_address IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'wallet_not_connected';
        END IF;
    END IF;

    -- The settlement shard: the debit wallet id's low 32 bits modulo the shard count (what
    -- `shard_of` in app/services/submission.py computes).
    v_id := uuid_send(v_debit);
    v_shard := (((get_byte(v_id, 12)::bigint << 24) + (get_byte(v_id, 13) << 16)
                 + (get_byte(v_id, 14) << 8) + get_byte(v_id, 15)) % p_shards)::int;

    -- 5. The transactions (created_at taken after the counters lock, so a wallet's created_at
    --    order matches its seq) and their audit entries.
    WITH lines AS (
        SELECT l, i FROM jsonb_array_elements(v_lines) WITH ORDINALITY AS x(l, i)
    ), recorded AS (
        INSERT INTO transactions
               (id, kind, debit_wallet_id, credit_wallet_id, amount, seq, shard, initiator_id,
                note, parent_id, details, stage, reference, expires_at, created_at)
        SELECT (l ->> 'id')::uuid, p_kind, v_debit,
               (l ->> 'credit_wallet')::uuid,
               (l ->> 'amount')::numeric, v_last - v_n + i, v_shard,
               p_initiator, l ->> 'note', v_parent,
               COALESCE(l -> 'details', '{}'::jsonb)
                   || CASE WHEN v_address IS NULL THEN '{}'::jsonb
                           ELSE jsonb_build_object('address', v_address) END,
               l ->> 'stage', l ->> 'reference', (l ->> 'expires_at')::timestamptz,
               clock_timestamp()
          FROM lines
        RETURNING id, credit_wallet_id, amount
    )
    INSERT INTO audit_log (action, actor_id, target, request_id, ip, details)
    SELECT p_kind || '.submitted', p_initiator, r.id::text, p_request_id, p_ip,
           jsonb_build_object('amount', r.amount::text, 'debit_wallet', v_debit,
                              'credit_wallet', r.credit_wallet_id)
      FROM recorded r;

    RETURN QUERY SELECT v_key, v_debit, v_shard, v_last - v_n + 1,
                        NULL::int, NULL::jsonb, NULL::text, NULL::text, NULL::timestamptz;
END
$$
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE wallet_counters (
            wallet_id uuid NOT NULL,
            next_seq bigint DEFAULT 0 NOT NULL,
            reserved_total numeric DEFAULT 0 NOT NULL,
            last_used timestamptz,
            CONSTRAINT pk_wallet_counters PRIMARY KEY (wallet_id),
            CONSTRAINT fk_wallet_counters_wallet_id_wallets FOREIGN KEY (wallet_id)
                REFERENCES wallets (id)
        )
        """
    )
    op.execute(
        "INSERT INTO wallet_counters (wallet_id, next_seq, reserved_total, last_used)"
        " SELECT id, next_seq, reserved, last_used FROM wallets"
    )
    op.execute("ALTER TABLE wallets ADD COLUMN released_total numeric DEFAULT 0 NOT NULL")
    op.execute("ALTER TABLE wallets DROP CONSTRAINT ck_wallets_reserved_non_negative")
    op.execute(
        "ALTER TABLE wallets DROP COLUMN reserved, DROP COLUMN next_seq, DROP COLUMN last_used"
    )
    op.execute(CREATE_COUNTERS_ROW)
    op.execute(
        "CREATE TRIGGER wallets_create_counters AFTER INSERT ON wallets"
        " FOR EACH ROW EXECUTE FUNCTION create_wallet_counters()"
    )
    op.execute(ACCEPT)
    # Most transactions have no reference, chain signature or parent: index only those that do
    # (every insert, and every settled status change, which is never a HOT update, maintained
    # three entries of NULL before).
    op.execute("ALTER TABLE transactions DROP CONSTRAINT uq_transactions_reference")
    op.execute("ALTER TABLE transactions DROP CONSTRAINT uq_transactions_tx_hash")
    op.execute("DROP INDEX ix_transactions_parent_id")
    for name, column in PARTIAL:
        op.execute(
            f"CREATE {'UNIQUE ' if name.startswith('uq') else ''}INDEX {name}"
            f" ON transactions ({column}) WHERE {column} IS NOT NULL"
        )


PARTIAL = (
    ("uq_transactions_reference", "reference"),
    ("uq_transactions_tx_hash", "tx_hash"),
    ("ix_transactions_parent_id", "parent_id"),
)


def downgrade() -> None:
    for name, _ in PARTIAL:
        op.execute(f"DROP INDEX {name}")
    op.execute("CREATE INDEX ix_transactions_parent_id ON transactions (parent_id)")
    op.execute(
        "ALTER TABLE transactions ADD CONSTRAINT uq_transactions_reference UNIQUE (reference),"
        " ADD CONSTRAINT uq_transactions_tx_hash UNIQUE (tx_hash)"
    )
    op.execute("DROP FUNCTION accept_transactions")
    op.execute("DROP TRIGGER wallets_create_counters ON wallets")
    op.execute("DROP FUNCTION create_wallet_counters")
    op.execute(
        "ALTER TABLE wallets ADD COLUMN reserved numeric(18, 6) DEFAULT 0 NOT NULL,"
        " ADD COLUMN next_seq bigint DEFAULT 0 NOT NULL,"
        " ADD COLUMN last_used timestamptz"
    )
    op.execute(
        "UPDATE wallets w SET reserved = c.reserved_total - w.released_total,"
        " next_seq = c.next_seq, last_used = c.last_used"
        " FROM wallet_counters c WHERE c.wallet_id = w.id"
    )
    op.execute(
        "ALTER TABLE wallets ADD CONSTRAINT ck_wallets_reserved_non_negative CHECK (reserved >= 0)"
    )
    op.execute("ALTER TABLE wallets DROP COLUMN released_total")
    op.execute("DROP TABLE wallet_counters")
