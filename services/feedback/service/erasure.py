"""The erasure of one customer's feedback, told to the other services."""

from __future__ import annotations

from datetime import UTC, datetime

from services.feedback import repository
from services.feedback.dependencies import FeedbackRuntime
from services.feedback.domain import pseudonym
from services.feedback.models import ErasureCreate
from shared.auth import Principal
from shared.dead_letters import erase_dead_letters
from shared.events import FeedbackErased
from shared.ids import new_id
from shared.storage import Document


async def create_erasure(runtime: FeedbackRuntime, *, principal: Principal, erasure_in: ErasureCreate) -> Document:
    """Delete one customer's feedback and publish ``feedback.erased`` for each, in one transaction.

    The feedback's customer rows go with it. Its source-id rows stay, marked erased, without anything
    of the customer: the integration id stays taken, so a retry or a re-sync of the same record answers
    "erased" (410 for a single POST, a duplicate without id in a batch, nothing on ``feedback.ingest``)
    instead of bringing the erased feedback back. Freeing the id would let any replay undo the erasure.
    New feedback of the same customer, under new ids, is taken as usual.
    """
    settings = runtime.settings
    customer = pseudonym(settings.pseudonym_key.get_secret_value().encode(), principal.org, erasure_in.customer_ref)
    erased = await repository.find_feedback_of_customer(runtime.db, principal=principal, customer_ref=customer)
    work = runtime.unit_of_work()
    repository.delete_feedback(work, org=principal.org, erased=erased, erased_at=datetime.now(UTC))
    for feedback in erased:
        work.publish(FeedbackErased.from_feedback(feedback))
    # The request is recorded without the customer's pseudonym: nothing left links to them.
    erasure = {
        "_id": new_id("er"),
        "org": principal.org,
        "requested_by": principal.subject,
        "requested_at": datetime.now(UTC),
        "erased": len(erased),
    }
    repository.create_erasure(work, erasure)
    await runtime.commit(work)
    # Ingest records that were dead-lettered keep the pseudonym too (never the raw reference): gone as well.
    await erase_dead_letters(runtime.db, principal.org, customer)
    return erasure
