"""Chain tasks: withdrawals forward, deposits watched. They take transaction ids."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task

from app import queue
from app.bootstrap import wiring
from app.chain.rpc import ChainUnavailableError
from app.services import deposits, withdrawals

log = logging.getLogger(__name__)


@shared_task(name=queue.PROCESS_WITHDRAWAL, ignore_result=True)
def process_withdrawal(tx_id: str) -> str:
    w = wiring()
    try:
        return withdrawals.process(w, w.system, uuid.UUID(tx_id))
    except ChainUnavailableError as exc:  # the poll job tries again; nothing decided
        log.warning("withdrawal %s: rpc unavailable: %s", tx_id, exc)
        return "rpc_unavailable"


@shared_task(name=queue.CHECK_DEPOSIT, ignore_result=True)
def check_deposit(tx_id: str) -> str:
    w = wiring()
    try:
        return deposits.check(w, w.system, uuid.UUID(tx_id))
    except ChainUnavailableError as exc:
        log.warning("deposit %s: rpc unavailable: %s", tx_id, exc)
        return "rpc_unavailable"


@shared_task(name="chain.poll", ignore_result=True)
def poll() -> int:
    """Fan out: every open withdrawal and every deposit awaiting payment gets a task."""
    w = wiring()
    open_withdrawals = withdrawals.open_withdrawals(w)
    open_deposits = deposits.open_deposits(w)
    for tx_id in open_withdrawals:
        w.queue.send(queue.PROCESS_WITHDRAWAL, str(tx_id))
    for tx_id in open_deposits:
        w.queue.send(queue.CHECK_DEPOSIT, str(tx_id))
    return len(open_withdrawals) + len(open_deposits)


@shared_task(name="chain.scan_late_deposits", ignore_result=True)
def scan_late_deposits() -> int:
    w = wiring()
    late = deposits.open_deposits(w, late=True)
    for tx_id in late:
        w.queue.send(queue.CHECK_DEPOSIT, str(tx_id))
    return len(late)
