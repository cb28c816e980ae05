"""GS1 pack codes: the three written forms, the checks on each part, EPC URIs and expiry."""

import datetime as dt
import re
from urllib.parse import unquote

import pytest

from node.healthcare.gs1 import (
    DEFAULT_PREFIX_LEN,
    Gs1Error,
    PackCode,
    check_expiry,
    check_gtin,
    check_lot,
    check_serial,
    company_prefix_length,
    company_prefix_matches,
    epc_serial,
    expired,
    gtin_with_check_digit,
    parse_code,
    sgtin_uri,
)
from primitives.errors import UsageError

GTIN = "09506000134352"
# Every character of GS1 AI encodable set 82.
SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
PACK = PackCode(GTIN, "ABC123", "L1", "271200")


def _ms(year, month, day, hour=0, minute=0, second=0, millis=0):
    moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1000 + millis


@pytest.mark.parametrize(
    "text",
    [
        "(01)09506000134352(21)ABC123(10)L1(17)271200",
        "(01)09506000134352(17)271200(10)L1(21)ABC123",
        "  (01) 09506000134352 (21) ABC123 (10) L1 (17) 271200\n",
        "01095060001343521727120010L1\x1d21ABC123",
        "010950600013435221ABC123\x1d10L1\x1d17271200",
        "]d201095060001343521727120010L1\x1d21ABC123",
        "]C1010950600013435221ABC123\x1d1727120010L1",
        "]Q301095060001343521727120010L1\x1d21ABC123\x1d",
        "https://id.gs1.org/01/09506000134352/21/ABC123?10=L1&17=271200",
        "https://id.gs1.org/01/09506000134352/10/L1/21/ABC123?17=271200",
        "https://verify.example.org/some/prefix/01/9506000134352/21/ABC123?17=271200&10=L1&utm=x",
        "HTTPS://id.gs1.org/01/09506000134352/21/ABC123?10=L1&17=271200",
        "]Q1https://id.gs1.org/01/09506000134352/21/ABC123?10=L1&17=271200",
    ],
)
def test_every_written_form_reads_as_the_same_pack(text):
    assert parse_code(text) == PACK


def test_a_pack_code_keeps_the_expiry_as_printed_and_as_a_date():
    assert PACK.expiry == "271200"
    assert PACK.expiry_date == dt.date(2027, 12, 31)
    bare = parse_code("(01)09506000134352(21)X")
    assert (bare.lot, bare.expiry, bare.expiry_date) == (None, None, None)


def test_each_written_form_of_a_pack_reads_back_as_that_pack():
    for pack in (PACK, PackCode(GTIN, "A/B%C?&", None, "280229"), PackCode("96385074", "1")):
        assert parse_code(pack.element_string()) == pack
        assert parse_code(pack.digital_link()) == pack
        assert parse_code(pack.digital_link("https://verify.example.org/v1")) == pack


def test_the_element_string_lists_gtin_expiry_lot_then_serial():
    assert PACK.element_string() == "(01)09506000134352(17)271200(10)L1(21)ABC123"
    assert PackCode(GTIN, "S").element_string() == "(01)09506000134352(21)S"


def test_a_digital_link_keeps_the_host_prefix_and_scheme_it_was_given():
    assert PACK.digital_link() == "https://id.gs1.org/01/09506000134352/10/L1/21/ABC123?17=271200"
    assert (
        PACK.digital_link("http://scan.example/p/")
        == "http://scan.example/p/01/09506000134352/10/L1/21/ABC123?17=271200"
    )
    assert PackCode(GTIN, "A/B").digital_link() == "https://id.gs1.org/01/09506000134352/21/A%2FB"
    with pytest.raises(Gs1Error) as err:
        PACK.digital_link("id.gs1.org")
    assert err.value.field == "host"


def test_short_gtins_are_kept_in_their_14_digit_form():
    assert check_gtin("9506000134352") == GTIN
    assert check_gtin("96385074") == "00000096385074"
    assert check_gtin(GTIN) == GTIN
    assert PackCode("9506000134352", "S").gtin == GTIN
    assert parse_code("https://id.gs1.org/01/9506000134352/21/S").gtin == GTIN


def test_gtin_with_check_digit_completes_a_body():
    assert gtin_with_check_digit("0950600013435") == GTIN
    # 1950600013435: weights 3,1,3,... from the right give 81, so the check digit is 9.
    assert gtin_with_check_digit("1950600013435") == "19506000134359"
    check_gtin(gtin_with_check_digit("1234567890123"))
    with pytest.raises(Gs1Error):
        gtin_with_check_digit("123")


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("(01)09506000134353(21)ABC", "gtin", "check digit"),
        ("010950600013435321ABC", "gtin", "check digit"),
        ("https://id.gs1.org/01/09506000134353/21/ABC", "gtin", "check digit"),
        ("(01)9506000134352(21)ABC", "gtin", "14 digits"),
        ("(21)ABC", "gtin", "no (01)"),
        ("(01)09506000134352", "serial", "no (21)"),
        ("(01)09506000134352(10)L1(17)271200", "serial", "no (21)"),
        ("https://id.gs1.org/01/09506000134352", "serial", "no (21)"),
        ("(01)09506000134352(21)" + "A" * 21, "serial", "at most 20"),
        ("010950600013435221" + "A" * 25, "serial", "at most 20"),
        ("https://id.gs1.org/01/09506000134352/21/" + "A" * 21, "serial", "at most 20"),
        ("(01)09506000134352(21)AB#C", "serial", "character set 82"),
        ("(01)09506000134352(21)AB C", "serial", "character set 82"),
        ("010950600013435221AB#C", "serial", "character set 82"),
        ("https://id.gs1.org/01/09506000134352/21/AB%23C", "serial", "character set 82"),
        ("(01)09506000134352(21)S(10)L~1", "lot", "character set 82"),
        ("0109506000134352\x1d21S\x1d10" + "L" * 21, "lot", "at most 20"),
        ("(01)09506000134352(21)S(17)271332", "expiry", "month 13"),
        ("(01)09506000134352(21)S(17)270230", "expiry", "28 days"),
        ("01095060001343521727023021S", "expiry", "28 days"),
        ("https://id.gs1.org/01/09506000134352/21/S?17=270230", "expiry", "28 days"),
        ("(01)09506000134352(21)S(17)2712", "expiry", "6 digits"),
        ("(01)09506000134352(21)A(21)B", "serial", "twice"),
        ("(01)09506000134352(21)S(1O)L1", "code", "unreadable"),
        ("(01)09506000134352(1O)L1(21)S", "code", "unreadable"),
        ("(01)09506000134352(21)A(B", "code", "unreadable"),
        ("garbage", "code", "garbage"),
        ("", "code", "empty"),
        ("   ", "code", "empty"),
        ("https://id.gs1.org/gtin/1", "code", "not a GS1 pack code"),
        ("]d10109506000134352\x1d21S", "code", "symbology"),
    ],
)
def test_a_bad_code_is_refused_naming_the_part_at_fault(text, field, says):
    with pytest.raises(Gs1Error) as err:
        parse_code(text)
    assert err.value.field == field
    assert says in str(err.value)
    assert isinstance(err.value, UsageError)


def test_a_code_that_is_not_text_is_refused():
    with pytest.raises(Gs1Error) as err:
        parse_code(None)  # type: ignore[arg-type]
    assert err.value.field == "code"


@pytest.mark.parametrize(
    ("gtin", "says"),
    [("0950600013435X", "digits"), ("095060001343", "check digit"), ("123456789", "9 digits"), ("", "digits")],
)
def test_check_gtin_refuses_bad_gtins(gtin, says):
    with pytest.raises(Gs1Error) as err:
        check_gtin(gtin)
    assert err.value.field == "gtin"
    assert says in str(err.value)


def test_serial_and_lot_are_1_to_20_characters_of_set_82():
    for i in range(0, len(SET_82), 20):
        assert check_serial(SET_82[i : i + 20]) == SET_82[i : i + 20]
    assert check_lot("A" * 20) == "A" * 20
    for bad in ("", "A" * 21, "ÄB", "A#", "A B", "A\x1d"):
        with pytest.raises(Gs1Error) as err:
            check_serial(bad)
        assert err.value.field == "serial"
        with pytest.raises(Gs1Error) as err:
            check_lot(bad)
        assert err.value.field == "lot"


def test_day_00_is_the_last_day_of_the_month():
    assert check_expiry("271200") == dt.date(2027, 12, 31)
    assert check_expiry("270200") == dt.date(2027, 2, 28)
    assert check_expiry("280200") == dt.date(2028, 2, 29)
    assert check_expiry("270415") == dt.date(2027, 4, 15)


def test_two_digit_years_are_read_in_a_fixed_window():
    assert check_expiry("000101") == dt.date(2000, 1, 1)
    assert check_expiry("761231") == dt.date(2076, 12, 31)
    assert check_expiry("770101") == dt.date(1977, 1, 1)
    assert check_expiry("991231") == dt.date(1999, 12, 31)


@pytest.mark.parametrize(
    "bad", ["2712", "27120000", "27AB00", "271300", "270431", "270229", "", "\uff12\uff17\uff11\uff12\uff10\uff10"]
)
def test_check_expiry_refuses_what_is_not_a_date(bad):
    with pytest.raises(Gs1Error) as err:
        check_expiry(bad)
    assert err.value.field == "expiry"


def test_a_pack_is_valid_through_its_expiry_day_and_expired_the_next():
    assert not expired("271200", _ms(2027, 12, 1))
    assert not expired("271200", _ms(2027, 12, 31))
    assert not expired("271200", _ms(2027, 12, 31, 23, 59, 59, 999))
    assert expired("271200", _ms(2028, 1, 1))
    assert expired("271200", _ms(2030, 6, 1))
    assert not expired("270415", _ms(2027, 4, 15, 12))
    assert expired("270415", _ms(2027, 4, 16))


def test_sgtin_uri_splits_the_gtin_at_the_company_prefix():
    # GTIN 0 9506000 13435 2: indicator 0, company prefix 9506000, item reference 13435, check digit 2.
    assert sgtin_uri(GTIN, "ABC123", 7) == "urn:epc:id:sgtin:9506000.013435.ABC123"
    assert sgtin_uri(GTIN, "ABC123", 6) == "urn:epc:id:sgtin:950600.0013435.ABC123"
    assert sgtin_uri(GTIN, "ABC123", 12) == "urn:epc:id:sgtin:950600013435.0.ABC123"
    assert sgtin_uri("19506000134359", "7", 7) == "urn:epc:id:sgtin:9506000.113435.7"
    assert sgtin_uri("9506000134352", "7", 9) == "urn:epc:id:sgtin:950600013.0435.7"
    assert PACK.sgtin_uri(7) == "urn:epc:id:sgtin:9506000.013435.ABC123"


def test_sgtin_uri_escapes_the_serial_characters_a_urn_cannot_hold():
    assert sgtin_uri(GTIN, "A/B%C", 7) == "urn:epc:id:sgtin:9506000.013435.A%2FB%25C"
    assert sgtin_uri(GTIN, '"&<>?', 7) == "urn:epc:id:sgtin:9506000.013435.%22%26%3C%3E%3F"
    assert sgtin_uri(GTIN, "!'()*+,-.:;=_", 7) == "urn:epc:id:sgtin:9506000.013435.!'()*+,-.:;=_"


@pytest.mark.parametrize("prefix_len", [5, 13, 0, True, "7"])
def test_sgtin_uri_needs_a_company_prefix_length_of_6_to_12(prefix_len):
    with pytest.raises(Gs1Error) as err:
        sgtin_uri(GTIN, "S", prefix_len)
    assert err.value.field == "prefix_len"


def test_sgtin_uri_checks_the_gtin_and_serial():
    with pytest.raises(Gs1Error) as err:
        sgtin_uri("09506000134353", "S", 7)
    assert err.value.field == "gtin"
    with pytest.raises(Gs1Error) as err:
        sgtin_uri(GTIN, "S#", 7)
    assert err.value.field == "serial"


def test_company_prefix_matches_the_digits_after_the_indicator():
    assert company_prefix_matches(GTIN, "9506000")
    assert company_prefix_matches("9506000134352", "950600")
    assert company_prefix_matches("19506000134359", "9506000")
    assert not company_prefix_matches(GTIN, "9506001")
    assert not company_prefix_matches(GTIN, "0950600")
    with pytest.raises(Gs1Error) as err:
        company_prefix_matches(GTIN, "95-06")
    assert err.value.field == "company_prefix"


def test_a_pack_code_validates_itself():
    with pytest.raises(Gs1Error) as err:
        PackCode(GTIN, "S", None, "271332")
    assert err.value.field == "expiry"
    with pytest.raises(Gs1Error) as err:
        PackCode(GTIN, "S", "")
    assert err.value.field == "lot"


@pytest.mark.parametrize(
    ("gtin", "length"),
    [
        ("07031234000019", 6),  # GS1 Norway: 703123
        ("04006381333931", 7),  # GS1 Germany: 4006381
        (GTIN, 11),  # GS1 Global Office: 95060001343
        ("96385074", 12),  # a GTIN-8, as GTIN-14 00000096385074
        (gtin_with_check_digit("0200000000000"), DEFAULT_PREFIX_LEN),  # restricted circulation
        (gtin_with_check_digit("0978000000000"), DEFAULT_PREFIX_LEN),  # ISBN: outside GS1's table
        (gtin_with_check_digit("1703123400001"), 6),  # the indicator digit plays no part
    ],
)
def test_the_company_prefix_length_comes_from_gs1s_table(gtin, length):
    assert company_prefix_length(gtin) == length
    company = sgtin_uri(gtin, "S").split(":")[4].split(".")[0]
    assert company == check_gtin(gtin)[1 : 1 + length]


def test_the_sgtin_uri_splits_at_the_gs1_company_prefix_by_default():
    assert sgtin_uri("07031234000019", "S1") == "urn:epc:id:sgtin:703123.0400001.S1"
    assert sgtin_uri(GTIN, "ABC123") == "urn:epc:id:sgtin:95060001343.05.ABC123"
    assert PACK.sgtin_uri() == sgtin_uri(GTIN, "ABC123")


# EPC Tag Data Standard: the serial of an SGTIN URI is 1-20 GS3A3 components:
# a letter, a digit, one of !'()*+,-.:;=_ or one of the seven escapes.
_GS3A3 = re.compile(r"(?:[A-Za-z0-9!'()*+,\-.:;=_]|%22|%25|%26|%2F|%3C|%3E|%3F)+")
_SGTIN = re.compile(r"urn:epc:id:sgtin:(?P<company>[0-9]+)\.(?P<item>[0-9]+)\.(?P<serial>.+)")


@pytest.mark.parametrize("char", list(SET_82))
def test_every_serial_character_has_its_epc_uri_form(char):
    for serial in (char, f"A{char}B", char * 20):
        uri = sgtin_uri(GTIN, serial)
        parts = _SGTIN.fullmatch(uri)
        assert parts is not None, uri
        assert len(parts["company"] + parts["item"]) == 13
        assert _GS3A3.fullmatch(parts["serial"]), uri
        assert unquote(parts["serial"]) == serial
        assert epc_serial(serial) == parts["serial"]
        escaped = char in '"%&/<>?'
        assert (parts["serial"] == serial) is not escaped
