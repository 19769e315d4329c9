"""Checks a drafted product description against what is known, before anyone sees it.

A description may only claim what the facts say: every colour, material, measurement and
price it names must appear in the product's facts (in any of the shop's languages, so
"rojo" in a Spanish draft is checked as "red"). It may not use the brand's banned words,
and it must be neither a stub nor an essay. A failed check does not stop the proposal: it is
shown on the card, so the person approving sees exactly what was not supported.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation

# Canonical attribute → its words in the shop languages the templates speak.
COLOURS = {
    "black": "black negro negra noir noire schwarz schwarze schwarzer nero nera preto preta",
    "white": "white blanco blanca blanc blanche weiß weiss weiße weisse bianco bianca branco",
    "red": "red rojo roja rouge rot rote roter rosso rossa vermelho vermelha",
    "blue": "blue azul bleu bleue blau blaue blauer blu",
    "navy": "navy marino",
    "green": "green verde vert verte grün grüne grüner",
    "yellow": "yellow amarillo amarilla jaune gelb gelbe giallo amarelo",
    "pink": "pink rosa rose",
    "purple": "purple morado morada violet violette lila viola roxo",
    "grey": "grey gray gris grise grau graue grigio cinza",
    "brown": "brown marrón marron braun braune marrone castanho",
    "beige": "beige",
    "orange": "orange naranja arancione laranja",
}
MATERIALS = {
    "cotton": "cotton algodón algodon coton baumwolle cotone algodão",
    "linen": "linen lino lin leinen linho",
    "wool": "wool lana laine wolle lã",
    "silk": "silk seda soie seide",
    "leather": "leather cuero piel cuir leder pelle couro",
    "denim": "denim",
    "cashmere": "cashmere cachemira cachemire kaschmir caxemira",
    "polyester": "polyester poliéster polyester poliestere",
    "bamboo": "bamboo bambú bambou bambus bambù",
    "ceramic": "ceramic ceramics cerámica céramique keramik ceramica cerâmica stoneware",
    "glass": "glass vidrio verre glas vetro vidro",
    "wood": "wood wooden madera bois holz legno madeira",
    "steel": "steel acero acier stahl acciaio aço",
    "brass": "brass latón laiton messing ottone latão",
    "gold": "gold golden oro dorado doré goldene ouro",
    "silver": "silver sterling plata argent silber argento prata",
}
SIZES = {"xxs", "xs", "s", "m", "l", "xl", "xxl", "xxxl"}
MEASURE = re.compile(r"\b(\d+(?:[.,]\d+)?)\s?(cm|mm|m|inch|inches|ml|l|kg|g|oz)\b", re.I)
PRICE = re.compile(
    r"(?:[$€£]\s?(\d+(?:[.,]\d{1,2})?))|(?:(\d+(?:[.,]\d{1,2})?)\s?(?:[$€£]|usd|eur|gbp)\b)", re.I
)
DEFAULT_BANNED = ["best in the world", "guaranteed", "miracle", "cure", "cheapest", "100% perfect"]
MIN_WORDS, MAX_WORDS = 10, 250


def _index(table: dict[str, str]) -> dict[str, str]:
    return {word: canonical for canonical, words in table.items() for word in words.split()}


_COLOUR_WORDS, _MATERIAL_WORDS = _index(COLOURS), _index(MATERIALS)


@dataclass(frozen=True)
class Check:
    check: str
    language: str
    ok: bool
    detail: str


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text.lower())


def _named(text: str, index: dict[str, str]) -> dict[str, str]:
    """canonical → the word the text used for it."""
    return {index[word]: word for word in _words(text) if word in index}


def materials_in(text: str) -> list[str]:
    """The materials a text names (in any of the shop languages), by their English names."""
    return sorted(_named(text, _MATERIAL_WORDS))


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _measures(text: str) -> set[tuple[Decimal | None, str]]:
    return {(_number(n), unit.lower()) for n, unit in MEASURE.findall(text)}


def _prices(text: str) -> set[Decimal]:
    found = (_number(a or b) for a, b in PRICE.findall(text))
    return {price for price in found if price is not None}


def check_description(
    *,
    text: str,
    language: str,
    facts: str,
    prices: list[Decimal] | None = None,
    banned: list[str] | None = None,
) -> list[dict]:
    """The checks of one language's draft (visible text) against the facts (text)."""
    claims = [
        _unsupported("colour", _named(text, _COLOUR_WORDS), _named(facts, _COLOUR_WORDS)),
        _unsupported("material", _named(text, _MATERIAL_WORDS), _named(facts, _MATERIAL_WORDS)),
    ]
    unsupported = [item for items in claims for item in items]
    fact_words = set(_words(facts))
    sizes = {w for w in re.findall(r"\b[A-Za-z]{1,4}\b", text) if w.isupper()}
    unsupported += [f"size {s}" for s in sorted(sizes) if s.lower() in SIZES - fact_words]
    unsupported += [
        f"{n} {u}" for n, u in sorted(_measures(text) - _measures(facts), key=str) if n is not None
    ]
    known_prices = set(prices or []) | _prices(facts)
    unsupported += [f"price {p}" for p in sorted(_prices(text) - known_prices)]
    checks = [
        Check(
            "facts",
            language,
            not unsupported,
            "every attribute it names is in the facts"
            if not unsupported
            else "not in the facts: " + ", ".join(unsupported),
        ),
        _banned_check(text, language, banned if banned is not None else DEFAULT_BANNED),
        _length_check(text, language),
    ]
    return [asdict(check) for check in checks]


def _unsupported(kind: str, claimed: dict[str, str], known: dict[str, str]) -> list[str]:
    return [
        f"{kind} '{word}'" for canonical, word in sorted(claimed.items()) if canonical not in known
    ]


def _banned_check(text: str, language: str, banned: list[str]) -> Check:
    lowered = f" {' '.join(_words(text))} "
    used = [phrase for phrase in banned if f" {' '.join(_words(phrase))} " in lowered]
    return Check(
        "banned_words",
        language,
        not used,
        "no banned words" if not used else "uses banned words: " + ", ".join(used),
    )


def _length_check(text: str, language: str) -> Check:
    count = len(text.split())
    ok = MIN_WORDS <= count <= MAX_WORDS
    return Check(
        "length",
        language,
        ok,
        f"{count} words" + ("" if ok else f" (expected {MIN_WORDS} to {MAX_WORDS})"),
    )


def failed(checks: list[dict]) -> list[dict]:
    return [check for check in checks if not check["ok"]]
