"""ISO 4217 currencies and their exponents (digits after the decimal point).

Codes are lowercase, as Stripe writes them. The exponent is ISO 4217's, which is what a
currency's minor unit means in our amounts. Stripe's units differ for some currencies (mga is
zero-decimal there, isk two-decimal in whole krónur, three-decimal amounts must end in 0): the
Stripe adapter converts every amount at the boundary, both ways, and refuses what Stripe cannot
represent (adapters/stripe/currency.py, docs/stripe.md).
"""

from __future__ import annotations

from ledger.errors import UnknownCurrencyError

_ZERO_DECIMAL = frozenset(
    """
    bif clp djf gnf isk jpy kmf krw pyg rwf ugx uyi vnd vuv xaf xof xpf
    """.split()
)
_THREE_DECIMAL = frozenset(
    """
    bhd iqd jod kwd lyd omr tnd
    """.split()
)
_FOUR_DECIMAL = frozenset(
    """
    clf uyw
    """.split()
)
_TWO_DECIMAL = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bmd bnd bob bov brl bsd btn bwp byn
    bzd cad cdf che chf chw cny cop cou crc cuc cup cve czk dkk dop dzd egp ern etb eur fjd fkp
    gbp gel ghs gip gmd gtq gyd hkd hnl htg huf idr ils inr irr jmd kes kgs khr kpw kyd kzt lak
    lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mru mur mvr mwk mxn mxv myr mzn nad ngn nio nok
    npr nzd pab pen pgk php pkr pln qar ron rsd rub sar sbd scr sdg sek sgd shp sle sll sos srd
    ssp stn svc syp szl thb tjs tmt top try ttd twd tzs uah usd usn uyu uzs ved ves wst xcd yer
    zar zmw zwl
    """.split()
)

EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_ZERO_DECIMAL, 0),
    **dict.fromkeys(_TWO_DECIMAL, 2),
    **dict.fromkeys(_THREE_DECIMAL, 3),
    **dict.fromkeys(_FOUR_DECIMAL, 4),
}


def require_currency(code: object, *, field: str = "currency") -> str:
    """Return `code` if it is a known lowercase ISO 4217 code, else raise."""
    if not isinstance(code, str) or code not in EXPONENTS:
        raise UnknownCurrencyError(
            f"unknown currency {code!r}: expected a lowercase ISO 4217 code such as 'usd'",
            field=field,
        )
    return code


def exponent(code: str) -> int:
    """Digits after the decimal point in `code`'s major unit."""
    return EXPONENTS[require_currency(code)]
