"""``EffectPayload``: what the department plugins read from an outbound effect's payload, and
the mapping error (naming the request) for what a request cannot be made from."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from hub.facade import DeliveryError, EffectPayload, text_of

SHANGHAI = timezone(timedelta(hours=8))


def test_fields_are_read_as_the_request_needs_them() -> None:
    read = EffectPayload({"external_no": " GH1 ", "source": "07", "photos": [" http://x/1.jpg ", "  "],
                          "reported_at": "2026-12-07T01:02:03", "n": 5}, "数字城管 create GH1")
    assert read.text("external_no") == "GH1" and read.text("n") == "" and read.text("missing") == ""
    assert read.required("external_no", "without external_no") == "GH1"
    assert read.one_of("source", ("07", "03"), "is not allowed") == "07"
    assert read.photos() == ["http://x/1.jpg"]
    # no offset: UTC; written in the system's zone and format
    assert read.local_time("reported_at", "%Y%m%d%H%M%S", SHANGHAI) == "20261207090203"
    assert read.local_time("missing", "%Y", SHANGHAI) is None
    assert text_of({"a": " b "}, "a") == "b"


@pytest.mark.parametrize(("payload", "ask", "message"), [
    ({}, lambda r: r.required("description", "create effect without a description"),
     "W: create effect without a description"),
    ({"source": "巡查"}, lambda r: r.one_of("source", ("网格", "12345"), "is not one the hub files under"),
     "W: source '巡查' is not one the hub files under (网格, 12345)"),
    ({}, lambda r: r.one_of("source", ("07",), "is not allowed"), "W: source '(none)' is not allowed (07)"),
    ({"photos": "http://x"}, lambda r: r.photos(), "W: photos is not a list of URLs"),
    ({"reported_at": "yesterday"}, lambda r: r.local_time("reported_at", "%Y", SHANGHAI),
     "W: reported_at is not an ISO 8601 time: 'yesterday'"),
])
def test_what_cannot_be_sent_is_a_mapping_error_naming_the_request(payload: dict[str, object], ask: object,
                                                                   message: str) -> None:
    with pytest.raises(DeliveryError) as refused:
        ask(EffectPayload(payload, "W"))  # type: ignore[operator]
    assert refused.value.kind == "mapping" and str(refused.value) == message
