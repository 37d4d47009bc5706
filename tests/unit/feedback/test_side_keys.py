"""The keys of the side rows that stand in for secondary indexes on feedback."""

from __future__ import annotations

from services.feedback.repository import KEY_SEPARATOR, customer_key, side_key, side_rows, source_key


def test_side_key__plain_parts_are_joined_by_the_separator_as_they_are():
    assert source_key("acme", "crm-1") == "acme\x1fcrm-1"
    assert customer_key("acme", "ab12", "fb_1") == "acme\x1fab12\x1ffb_1"


def test_side_key__a_separator_or_escape_inside_a_part_cannot_make_two_keys_equal():
    pairs = [
        (("a\x1fb", "c"), ("a", "b\x1fc")),
        (("a\x1e", "s"), ("a\x1fs",)),
        (("a\x1es",), ("a\x1f",)),
        (("a\x1e", "e"), ("a\x1ee",)),
    ]
    for left, right in pairs:
        assert side_key(*left) != side_key(*right), (left, right)


def test_side_key__a_customers_prefix_begins_only_that_customers_keys():
    prefix = side_key("acme", "ab12") + KEY_SEPARATOR
    assert customer_key("acme", "ab12", "fb_1").startswith(prefix)
    # An organisation that ends in what looks like another's prefix.
    assert not customer_key("acme\x1fab12", "cd34", "fb_2").startswith(prefix)
    assert not customer_key("acme", "ab123", "fb_3").startswith(prefix)


def test_side_rows__only_for_a_source_id_or_a_customer_ref():
    feedback = {"_id": "fb_1", "org": "acme", "source_id": "s-1", "customer_ref": "ab12"}
    assert side_rows(feedback) == [
        ("source_ids", {"_id": "acme\x1fs-1", "feedback_id": "fb_1"}),
        ("customer_feedback", {"_id": "acme\x1fab12\x1ffb_1", "feedback_id": "fb_1"}),
    ]
    assert side_rows({**feedback, "source_id": None, "customer_ref": None}) == []
