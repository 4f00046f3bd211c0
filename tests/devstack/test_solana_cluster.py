"""The local Solana cluster behaves like a real RPC node for the calls the wallet backend makes.

Everything goes over HTTP, through solana-py's AsyncClient where it has the method and raw
JSON-RPC otherwise. Clusters run with the ticker paused (slot_ms=0) and are advanced explicitly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from devstack.solana import LocalCluster
from devstack.solana.codec import b58encode

MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
FINALIZE_AFTER = 8
T = TypeVar("T")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "solana", slot_ms=0, finalize_after=FINALIZE_AFTER) as running:
        yield running


def with_client(cluster: LocalCluster, use: Callable[[AsyncClient], Awaitable[T]]) -> T:
    async def session() -> T:
        async with AsyncClient(cluster.url, timeout=10) as client:
            return await use(client)

    return asyncio.run(session())


def rpc(url: str, method: str, *params: Any) -> dict[str, Any]:
    """One raw JSON-RPC call; returns the whole response object (result or error)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 41, "method": method, "params": list(params)})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    assert answer["id"] == 41
    return answer


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def blockhash(cluster: LocalCluster, commitment: str = "confirmed") -> Hash:
    value = rpc(cluster.url, "getLatestBlockhash", {"commitment": commitment})["result"]["value"]
    return Hash.from_string(value["blockhash"])


def sign(instructions: list[Instruction], signers: list[Keypair], recent: Hash) -> bytes:
    message = Message(instructions, signers[0].pubkey())
    return bytes(VersionedTransaction.from_legacy(Transaction(signers, message, recent)))


def send(cluster: LocalCluster, raw: bytes, skip_preflight: bool = False) -> str:
    opts = TxOpts(skip_preflight=skip_preflight, preflight_commitment=Confirmed)
    return str(with_client(cluster, lambda c: c.send_raw_transaction(raw, opts)).value)


def sol_transfer(payer: Keypair, to: Pubkey, lamports: int, recent: Hash) -> bytes:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return sign([ix], [payer], recent)


def balance(cluster: LocalCluster, owner: Pubkey) -> int:
    return int(rpc(cluster.url, "getBalance", str(owner))["result"]["value"])


def token_balance(cluster: LocalCluster, owner: Pubkey) -> str:
    ata = str(get_associated_token_address(owner, cluster.mint))
    return str(rpc(cluster.url, "getTokenAccountBalance", ata)["result"]["value"]["uiAmountString"])


def funded_wallet(cluster: LocalCluster, sol: str = "2", tokens: str = "100") -> Keypair:
    wallet = Keypair()
    cluster.fund(wallet.pubkey(), sol=sol, tokens=tokens)
    return wallet


def token_payment(
    cluster: LocalCluster,
    payer: Keypair,
    recipient: Pubkey,
    units: int,
    references: tuple[Pubkey, ...] = (),
    memo: bytes | None = None,
) -> list[Instruction]:
    """Instructions a Solana Pay wallet builds: [create ATA], [memo], transferChecked+references."""
    pay = transfer_checked(
        TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=get_associated_token_address(payer.pubkey(), cluster.mint),
            mint=cluster.mint,
            dest=get_associated_token_address(recipient, cluster.mint),
            owner=payer.pubkey(),
            amount=units,
            decimals=cluster.decimals,
        )
    )
    refs = [AccountMeta(ref, is_signer=False, is_writable=False) for ref in references]
    pay = Instruction(pay.program_id, pay.data, [*pay.accounts, *refs])
    instructions = [
        create_idempotent_associated_token_account(payer.pubkey(), recipient, cluster.mint)
    ]
    if memo is not None:
        instructions.append(Instruction(MEMO_PROGRAM, memo, []))
    return [*instructions, pay]


def status(cluster: LocalCluster, signature: str) -> dict[str, Any] | None:
    params = {"searchTransactionHistory": True}
    value: list[Any] = rpc(cluster.url, "getSignatureStatuses", [signature], params)["result"][
        "value"
    ]
    return value[0]


def test_a_signed_sol_transfer_lands_and_moves_the_lamports(cluster: LocalCluster) -> None:
    payer, payee = funded_wallet(cluster, tokens="0"), Keypair()

    latest = with_client(cluster, lambda c: c.get_latest_blockhash(Confirmed)).value
    signature = send(cluster, sol_transfer(payer, payee.pubkey(), 1_000_000, latest.blockhash))

    assert latest.last_valid_block_height == cluster.slot + 150
    assert balance(cluster, payee.pubkey()) == 1_000_000
    assert balance(cluster, payer.pubkey()) == 2_000_000_000 - 1_000_000 - 5000
    assert status(cluster, signature) == {
        "slot": cluster.slot,
        "confirmations": 0,
        "err": None,
        "status": {"Ok": None},
        "confirmationStatus": "confirmed",
    }


def test_status_goes_from_confirmed_to_finalized_and_finalized_reads_follow(
    cluster: LocalCluster,
) -> None:
    payer = funded_wallet(cluster, tokens="0")
    signature = send(cluster, sol_transfer(payer, Keypair().pubkey(), 10**6, blockhash(cluster)))
    sig = Signature.from_string(signature)

    cluster.advance(FINALIZE_AFTER - 1)
    statuses = with_client(cluster, lambda c: c.get_signature_statuses([sig])).value
    assert statuses[0] is not None
    assert statuses[0].confirmations == FINALIZE_AFTER - 1
    assert str(statuses[0].confirmation_status) == "TransactionConfirmationStatus.Confirmed"
    assert with_client(cluster, lambda c: c.get_transaction(sig)).value is None

    cluster.advance(1)
    statuses = with_client(cluster, lambda c: c.get_signature_statuses([sig])).value
    assert statuses[0] is not None and statuses[0].confirmations is None
    assert str(statuses[0].confirmation_status) == "TransactionConfirmationStatus.Finalized"
    assert with_client(cluster, lambda c: c.get_transaction(sig)).value is not None


def test_the_same_signed_bytes_sent_twice_execute_once(cluster: LocalCluster) -> None:
    payer, payee = funded_wallet(cluster, tokens="0"), Keypair()
    raw = sol_transfer(payer, payee.pubkey(), 5_000_000, blockhash(cluster))

    first = send(cluster, raw)
    cluster.advance(3)
    rebroadcast = send(cluster, raw, skip_preflight=True)
    with pytest.raises(RPCException, match="already been processed"):
        send(cluster, raw)

    assert rebroadcast == first
    assert balance(cluster, payee.pubkey()) == 5_000_000
    history = rpc(
        cluster.url, "getSignaturesForAddress", str(payee.pubkey()), {"commitment": "confirmed"}
    )
    assert [entry["signature"] for entry in history["result"]] == [first]


def test_a_blockhash_stays_valid_for_150_blocks_and_is_then_rejected(
    cluster: LocalCluster,
) -> None:
    payer = funded_wallet(cluster, sol="5", tokens="0")
    old = blockhash(cluster)
    cluster.advance(150)
    send(cluster, sol_transfer(payer, Keypair().pubkey(), 10**6, old))  # height == last valid

    cluster.advance(1)
    expired = sol_transfer(payer, Keypair().pubkey(), 10**6, old)
    answer = rpc(cluster.url, "sendTransaction", b64(expired), {"encoding": "base64"})
    assert answer["error"]["code"] == -32002
    assert answer["error"]["message"] == "Transaction simulation failed: Blockhash not found"
    assert answer["error"]["data"]["err"] == "BlockhashNotFound"

    dropped = send(cluster, expired, skip_preflight=True)
    cluster.advance(1)
    assert status(cluster, dropped) is None


def test_base58_encoded_transactions_are_accepted(cluster: LocalCluster) -> None:
    payer, payee = funded_wallet(cluster, tokens="0"), Keypair()
    raw = sol_transfer(payer, payee.pubkey(), 10**6, blockhash(cluster))
    answer = rpc(cluster.url, "sendTransaction", b58encode(raw))
    assert answer["result"] == str(VersionedTransaction.from_bytes(raw).signatures[0])


def test_spl_transfer_checked_reports_pre_and_post_token_balances(cluster: LocalCluster) -> None:
    payer, recipient = funded_wallet(cluster, tokens="100"), Keypair()
    instructions = token_payment(cluster, payer, recipient.pubkey(), 12_500_000)
    signature = send(cluster, sign(instructions, [payer], blockhash(cluster)))

    assert token_balance(cluster, recipient.pubkey()) == "12.5"
    assert token_balance(cluster, payer.pubkey()) == "87.5"
    sig = Signature.from_string(signature)
    tx = with_client(cluster, lambda c: c.get_transaction(sig, "json", Confirmed, 0)).value
    assert tx is not None and tx.transaction.meta is not None
    meta = tx.transaction.meta
    assert meta.err is None and meta.fee == 5000
    pre = {str(b.owner): b.ui_token_amount.amount for b in meta.pre_token_balances or []}
    post = {
        str(b.owner): b.ui_token_amount.ui_amount_string for b in meta.post_token_balances or []
    }
    assert pre == {str(payer.pubkey()): "100000000"}  # recipient ATA did not exist yet
    assert post == {str(payer.pubkey()): "87.5", str(recipient.pubkey()): "12.5"}
    assert tx.slot == cluster.slot and tx.block_time is not None

    raw = rpc(cluster.url, "getTransaction", signature, {"commitment": "confirmed"})["result"]
    message = raw["transaction"]["message"]
    assert message["header"]["numRequiredSignatures"] == 1
    assert message["recentBlockhash"] == str(blockhash(cluster))
    assert message["instructions"][-1]["data"]  # base58 text
    assert raw["meta"]["postTokenBalances"][0]["mint"] == str(cluster.mint)
    assert "version" not in raw  # only with maxSupportedTransactionVersion, as on real nodes


def test_a_reference_key_finds_a_solana_pay_payment(cluster: LocalCluster) -> None:
    payer, merchant, reference = funded_wallet(cluster), Keypair(), Keypair().pubkey()
    instructions = token_payment(
        cluster, payer, merchant.pubkey(), 1_000_000, (reference,), memo=b"order-42"
    )
    signature = send(cluster, sign(instructions, [payer], blockhash(cluster)))

    found = with_client(
        cluster, lambda c: c.get_signatures_for_address(reference, commitment=Confirmed)
    ).value
    assert [str(entry.signature) for entry in found] == [signature]
    assert found[0].memo == "[8] order-42"
    assert with_client(cluster, lambda c: c.get_signatures_for_address(reference)).value == []

    cluster.advance(FINALIZE_AFTER)
    finalized = with_client(cluster, lambda c: c.get_signatures_for_address(reference)).value
    assert [str(entry.signature) for entry in finalized] == [signature]


def test_signatures_for_address_are_newest_first_with_limit_before_and_until(
    cluster: LocalCluster,
) -> None:
    payer, payee = funded_wallet(cluster, sol="5", tokens="0"), Keypair().pubkey()
    sent = []
    for lamports in range(1_000_000, 1_000_005):
        sent.append(send(cluster, sol_transfer(payer, payee, lamports, blockhash(cluster))))
        cluster.advance(1)
    newest_first = list(reversed(sent))

    def listing(**options: Any) -> list[str]:
        options["commitment"] = "confirmed"
        result = rpc(cluster.url, "getSignaturesForAddress", str(payee), options)["result"]
        return [entry["signature"] for entry in result]

    assert listing() == newest_first
    assert listing(limit=2) == newest_first[:2]
    assert listing(before=newest_first[1]) == newest_first[2:]
    assert listing(until=newest_first[3]) == newest_first[:3]
    assert listing(before=newest_first[0], until=newest_first[3], limit=1) == newest_first[1:2]


def test_a_failing_transaction_is_refused_by_preflight_but_lands_failed_without_it(
    cluster: LocalCluster,
) -> None:
    payer = funded_wallet(cluster, sol="1", tokens="0")
    too_much = sol_transfer(payer, Keypair().pubkey(), 50 * 10**9, blockhash(cluster))

    answer = rpc(cluster.url, "sendTransaction", b64(too_much), {"encoding": "base64"})
    assert answer["error"]["code"] == -32002
    assert answer["error"]["data"]["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert any("insufficient lamports" in line for line in answer["error"]["data"]["logs"])
    assert balance(cluster, payer.pubkey()) == 10**9  # nothing landed, no fee

    signature = send(cluster, too_much, skip_preflight=True)
    assert status(cluster, signature)["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert balance(cluster, payer.pubkey()) == 10**9 - 5000  # a failed tx still pays its fee
    tx = rpc(cluster.url, "getTransaction", signature, {"commitment": "confirmed"})["result"]
    assert tx["meta"]["status"] == {"Err": {"InstructionError": [0, {"Custom": 1}]}}


def test_a_bad_signature_is_refused(cluster: LocalCluster) -> None:
    payer = funded_wallet(cluster, tokens="0")
    tx = VersionedTransaction.from_bytes(
        sol_transfer(payer, Keypair().pubkey(), 1, blockhash(cluster))
    )
    forged = VersionedTransaction.populate(tx.message, [Keypair().sign_message(b"x")])
    answer = rpc(cluster.url, "sendTransaction", b64(bytes(forged)), {"encoding": "base64"})
    assert answer["error"]["code"] == -32003


def test_restart_with_the_same_state_dir_keeps_keys_balances_and_history(tmp_path: Path) -> None:
    state = tmp_path / "solana"
    with LocalCluster(state, slot_ms=0, finalize_after=FINALIZE_AFTER) as first:
        mint, treasury = first.mint, first.treasury_keypair.pubkey()
        payer, payee = funded_wallet(first, tokens="100"), Keypair()
        signature = send(
            first,
            sign(token_payment(first, payer, payee.pubkey(), 3_000_000), [payer], blockhash(first)),
        )
        pending = sol_transfer(payer, payee.pubkey(), 10**6, blockhash(first))
        first.advance(10)
        slot = first.slot

    info = json.loads((state / "cluster.json").read_text())
    assert info["mint"] == str(mint) and info["treasury"] == str(treasury)
    treasury_file = Keypair.from_bytes(
        bytes(json.loads(Path(info["treasury_keypair_path"]).read_text()))
    )
    assert treasury_file.pubkey() == treasury

    with LocalCluster(state, slot_ms=0, finalize_after=FINALIZE_AFTER) as second:
        assert second.mint == mint and second.treasury_keypair.pubkey() == treasury
        assert second.slot == slot
        assert token_balance(second, payee.pubkey()) == "3"
        assert token_balance(second, payer.pubkey()) == "97"
        assert token_balance(second, treasury) == "1000000"
        assert status(second, signature)["confirmationStatus"] == "finalized"
        send(second, pending)  # a blockhash from before the restart is still in its window
        assert balance(second, payee.pubkey()) == 10**6


def test_rpc_down_answers_503_until_the_fault_is_cleared(cluster: LocalCluster) -> None:
    assert rpc(cluster.url, "devstack_setFault", {"mode": "down"})["result"]["mode"] == "down"

    with pytest.raises(urllib.error.HTTPError) as down:
        rpc(cluster.url, "getBlockHeight")
    assert down.value.code == 503
    with pytest.raises(SolanaRpcException):
        with_client(cluster, lambda c: c.get_block_height())
    assert rpc(cluster.url, "devstack_info")["result"]["fault"] == "down"  # admin still works

    rpc(cluster.url, "devstack_setFault", {"mode": None})
    assert with_client(cluster, lambda c: c.get_block_height()).value == max(
        0, cluster.slot - FINALIZE_AFTER
    )


def test_dropped_sends_return_a_signature_that_never_lands(cluster: LocalCluster) -> None:
    payer, payee = funded_wallet(cluster, tokens="0"), Keypair()
    raw = sol_transfer(payer, payee.pubkey(), 10**6, blockhash(cluster))
    cluster.set_fault("drop_sends")
    signature = send(cluster, raw)
    cluster.advance(2)
    assert status(cluster, signature) is None
    cluster.set_fault(None)

    assert send(cluster, raw) == signature  # rebroadcasting the same bytes lands it
    assert balance(cluster, payee.pubkey()) == 10**6


def test_v0_transactions_need_max_supported_transaction_version(cluster: LocalCluster) -> None:
    payer, payee = funded_wallet(cluster, tokens="0"), Keypair()
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=payee.pubkey(), lamports=10**6)
    )
    message = MessageV0.try_compile(payer.pubkey(), [ix], [], blockhash(cluster))
    signature = send(cluster, bytes(VersionedTransaction(message, [payer])))

    without = rpc(cluster.url, "getTransaction", signature, {"commitment": "confirmed"})
    assert without["error"]["code"] == -32015
    config = {"commitment": "confirmed", "maxSupportedTransactionVersion": 0}
    assert rpc(cluster.url, "getTransaction", signature, config)["result"]["version"] == 0


def test_batches_unknown_methods_and_token_queries(cluster: LocalCluster) -> None:
    wallet = funded_wallet(cluster, tokens="2.5")
    body = json.dumps(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
            {"jsonrpc": "2.0", "id": "b", "method": "noSuchMethod"},
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "getTokenAccountsByOwner",
                "params": [
                    str(wallet.pubkey()),
                    {"mint": str(cluster.mint)},
                    {"encoding": "jsonParsed"},
                ],
            },
        ]
    ).encode()
    request = urllib.request.Request(cluster.url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        health, unknown, accounts = json.loads(response.read())
    assert health == {"jsonrpc": "2.0", "result": "ok", "id": 1}
    assert unknown["error"]["code"] == -32601 and unknown["id"] == "b"
    parsed = accounts["result"]["value"][0]["account"]["data"]["parsed"]["info"]
    assert parsed["tokenAmount"]["uiAmountString"] == "2.5"
    assert parsed["owner"] == str(wallet.pubkey())
    account = rpc(
        cluster.url,
        "getAccountInfo",
        accounts["result"]["value"][0]["pubkey"],
        {"encoding": "base64"},
    )
    assert account["result"]["value"]["owner"] == str(TOKEN_PROGRAM_ID)


def test_the_ticker_produces_blocks_on_its_own(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "solana", slot_ms=10) as ticking:
        deadline = time.monotonic() + 5
        while ticking.slot < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ticking.slot >= 5
        rpc(ticking.url, "devstack_setSlotMs", {"slotMs": 0})
        paused_at = ticking.slot
        time.sleep(0.1)
        assert ticking.slot == paused_at


def test_the_cli_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.solana", "--state-dir", str(tmp_path), "--port", "0"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert rpc(url, "getHealth")["result"] == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
