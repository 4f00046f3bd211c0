"""step-up confirmation: high-value transfers and withdrawals wait for the connected wallet

- `transactions.stage` may be `awaiting_confirmation`.
- `wallets.step_up_amount`: the user's own step-up amount (NULL: the platform's STEP_UP_AMOUNT,
  which the API passes with each transfer or withdrawal line as `step_up`). Read by
  `accept_transactions` in the wallet row it already reads: no extra query on the hot path.
- `accept_transactions` refuses a transfer or withdrawal at or above the lower of the two with
  `step_up_required` (DETAIL: the connected address) or, without a connected address,
  `step_up_unavailable`. The API then records it PENDING in stage `awaiting_confirmation`
  (reserved, not settled), its message naming that address; such a transaction takes no `seq`
  (a placeholder from the sequence `unconfirmed_seq`, negated: unique per wallet, never
  `settled_seq + 1`), so it holds back none of the wallet's later debits. Confirming it hands
  out the wallet's next `seq`; expiry fails it (`unconfirmed`) and releases the reservation.

`CREATE OR REPLACE` keeps the function's grants to `wallet_app` (revision 0010); the sequence
and the column are covered by 0010's default privileges.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ACCEPT = """
CREATE OR REPLACE FUNCTION accept_transactions(
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
    v_confirming boolean;
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
    --    total (pending refunds count); the original is locked so two refunds serialise. Only
    --    money a user paid is given back: a transfer between user wallets, or a fee a user paid
    --    the platform (a system wallet on another side is a row from before revision 0011).
    IF p_refund_of IS NOT NULL THEN
        SELECT t.kind, t.status, t.amount, t.debit_wallet_id, t.credit_wallet_id,
               d.kind AS debit_kind, c.kind AS credit_kind
          INTO v_original
          FROM transactions t
          JOIN wallets d ON d.id = t.debit_wallet_id
          JOIN wallets c ON c.id = t.credit_wallet_id
         WHERE t.id = p_refund_of
           FOR UPDATE OF t;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'transaction_not_found';
        END IF;
        IF v_original.kind NOT IN ('transfer', 'service_fee')
           OR v_original.status <> 'completed' THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'not_refundable';
        END IF;
        IF v_original.debit_kind <> 'user'
           OR v_original.credit_kind <> (CASE v_original.kind WHEN 'transfer' THEN 'user'
                                                              ELSE 'platform' END) THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'not_refundable',
                  DETAIL = 'only money a user paid to a user or the platform is refundable';
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

    -- 3. The counterparties. A user id names a user's wallet, never a system wallet (platform,
    --    issuance, chain): a system account's id is refused like an unknown user's.
    IF v_debit IS NULL THEN
        SELECT w.id INTO v_debit
          FROM wallets w WHERE w.user_id = p_debit_user AND w.kind = 'user';
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
              FROM wallets w
             WHERE w.user_id = (v_lines -> 0 ->> 'credit_user')::uuid AND w.kind = 'user';
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
                            WHERE w.user_id = (l ->> 'credit_user')::uuid AND w.kind = 'user')
         LIMIT 1;
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'recipient_not_found',
                  DETAIL = 'no user ' || v_missing;
        END IF;
        SELECT COALESCE(sum((l ->> 'amount')::numeric), 0),
               jsonb_agg(CASE WHEN l ? 'credit_user'
                              THEN l || jsonb_build_object('credit_wallet',
                                   (SELECT w.id FROM wallets w
                                     WHERE w.user_id = (l ->> 'credit_user')::uuid
                                       AND w.kind = 'user'))
                              ELSE l END ORDER BY i)
          INTO v_total, v_lines
          FROM jsonb_array_elements(v_lines) WITH ORDINALITY AS x(l, i);
    END IF;

    -- 4. Reserve on the submit-side row, then check against the wallet's committed state. A
    --    transaction recorded awaiting step-up confirmation takes no `seq` yet (it would hold
    --    back every later debit of the wallet while it waits): it gets one when confirmed.
    v_confirming := p_kind IN ('transfer', 'withdrawal')
                    AND (v_lines -> 0 ->> 'stage') = 'awaiting_confirmation';
    UPDATE wallet_counters c
       SET next_seq = c.next_seq + CASE WHEN v_confirming THEN 0 ELSE v_n END,
           reserved_total = c.reserved_total + v_total,
           last_used = now()
     WHERE c.wallet_id = v_debit
    RETURNING c.next_seq, c.reserved_total INTO v_last, v_reserved;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'wallet_not_found';
    END IF;
    SELECT w.kind, w.balance, w.released_total, w.is_active, w.address, w.step_up_amount
      INTO v_wallet
      FROM wallets w WHERE w.id = v_debit;
    -- What may pay for each kind: a user's wallet, except rewards (the platform), issuance and
    -- deposits (an external contra account) and refunds (checked above for a service's refund;
    -- the chain account for a failed withdrawal's).
    IF p_kind <> 'refund' AND v_wallet.kind <> (CASE p_kind WHEN 'reward' THEN 'platform'
                                                            WHEN 'issuance' THEN 'external'
                                                            WHEN 'deposit' THEN 'external'
                                                            ELSE 'user' END) THEN
        RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'wallet_not_found',
              DETAIL = 'a ' || v_wallet.kind || ' wallet does not pay for a ' || p_kind;
    END IF;
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
    -- Step-up: a transfer or withdrawal at or above the step-up amount (the platform's, passed
    -- as the line's `step_up`, or the user's own lower one) needs the connected wallet's
    -- signature. Refused here with the connected address as DETAIL; the caller records it
    -- again awaiting confirmation, naming that address, which must still be the connected one.
    IF p_kind IN ('transfer', 'withdrawal') THEN
        IF v_confirming THEN
            IF v_wallet.address IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'step_up_unavailable';
            END IF;
            IF v_wallet.address IS DISTINCT FROM
               (v_lines -> 0 -> 'details' -> 'confirmation' ->> 'address') THEN
                RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'step_up_required',
                      DETAIL = v_wallet.address;
            END IF;
        ELSIF v_total >= LEAST((v_lines -> 0 ->> 'step_up')::numeric,
                               v_wallet.step_up_amount) THEN
            IF v_wallet.address IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'step_up_unavailable';
            END IF;
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'step_up_required',
                  DETAIL = v_wallet.address;
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
               (l ->> 'amount')::numeric,
               CASE WHEN v_confirming THEN -nextval('unconfirmed_seq') ELSE v_last - v_n + i END,
               v_shard,
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


def _accept_0011() -> str:
    """Revision 0011's definition, to restore on downgrade (one copy of it, in 0011)."""
    path = Path(__file__).with_name("0011_user_counterparties.py")
    spec = importlib.util.spec_from_file_location("revision_0011", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    accept: str = module.ACCEPT
    return accept


STAGES = "'awaiting_payment', 'on_chain'"


def upgrade() -> None:
    op.execute("ALTER TABLE transactions DROP CONSTRAINT ck_transactions_stage")
    op.execute(
        "ALTER TABLE transactions ADD CONSTRAINT ck_transactions_stage"
        f" CHECK (stage IS NULL OR stage IN ({STAGES}, 'awaiting_confirmation'))"
    )
    op.execute("ALTER TABLE wallets ADD COLUMN step_up_amount numeric(18, 6)")
    op.execute("CREATE SEQUENCE unconfirmed_seq")
    op.execute(ACCEPT)


def downgrade() -> None:
    op.execute(_accept_0011())
    op.execute("DROP SEQUENCE unconfirmed_seq")
    op.execute("ALTER TABLE wallets DROP COLUMN step_up_amount")
    op.execute("ALTER TABLE transactions DROP CONSTRAINT ck_transactions_stage")
    op.execute(
        "ALTER TABLE transactions ADD CONSTRAINT ck_transactions_stage"
        f" CHECK (stage IS NULL OR stage IN ({STAGES}))"
    )
