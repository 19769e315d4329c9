"""Checks a model-written draft (a reply, a description, a post) before anyone sees it.

Every draft gets the same checks, each a row `{check, language, ok, detail}` on its card:

- `language`: written in the language asked for (the local detector says so);
- `markers`: no data-block or chat markers of our prompts, no sentence of our instructions
  echoed back;
- `complete`: not cut off at the token limit;
- `facts`: every number (with or without a currency), measurement, percentage, duration,
  fee, colour, material, size, e-mail address, phone number and URL it names is in the facts
  it was given. Numbers are compared as values (49 == 49.00 == "49,00"), so "51.25" against
  facts of 49.00 is caught with or without a currency sign; a negated attribute ("not made of
  polyester", "sin poliéster", "kein Polyester") is not a claim.

A post also gets `products`: it names no product of the shop (by title, in any case) that
its brief is not about. Descriptions also get `banned_words` and `length`. Everything here
is plain Python over the text split by simple, linear-time patterns: model output is
untrusted text too.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation

from agents.llm import untrusted


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


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
# A fee is a policy: a draft may name one only when the facts do.
FEES = {
    "fee": "fee fees restocking surcharge gebühr gebühren bearbeitungsgebühr tarifa comisión "
    "recargo frais commissione supplemento taxa kosten opłata avgift gebyr toeslag",
}
# Words that take back the attribute after them ("not made of polyester", "sin poliéster",
# "kein Polyester", "sans laine"), within a few words and the same clause.
NEGATIONS = _wordset(
    "not no never without nor neither free sin ni nunca kein keine keinen keiner keinem ohne "
    "nicht pas sans aucun aucune ni jamais senza non né mai sem não nem nenhum nunca geen "
    "zonder niet nie bez ani żadnych inte utan ingen ikke uden libre"
)
NEGATION_WINDOW = 3
FREE_AFTER = {"free", "frei", "freie", "freies"}  # "polyester-free", "polyesterfrei" aside

SIZES = {"xxs", "xs", "s", "m", "l", "xl", "xxl", "xxxl"}
PERCENT_WORDS = {"%", "percent", "prozent", "procent", "porcentaje", "pourcent"}
PERCENT_PAIRS = {("per", "cent"), ("por", "ciento"), ("pour", "cent"), ("per", "cento")}
DURATIONS = {
    "day": "day days tag tage tagen werktag werktage werktagen día días dia dias jour jours "
    "giorno giorni dag dagen dagar dage dni dzień",
    "week": "week weeks woche wochen semana semanas semaine semaines settimana settimane "
    "weken tydzień tygodnie tygodni vecka veckor uge uger",
    "month": "month months monat monate monaten mes meses mois mese mesi maand maanden "
    "miesiąc miesiące miesięcy månad månader måned måneder",
    "hour": "hour hours h hrs stunde stunden std hora horas heure heures ora ore uur uren "
    "godzina godziny godzin timme timmar time timer",
    "minute": "minute minutes min mins minuten minuto minutos minuti minuut minuten minut",
    "year": "year years jahr jahre jahren año años an ans anno anni ano anos jaar jaren rok "
    "lat lata år",
}
DURATION_QUALIFIERS = {"business", "working", "calendar", "more", "further", "weitere"}
MEASURES = {
    "mm": "mm",
    "cm": "cm",
    "m": "m metre metres meter meters",
    "km": "km",
    "g": "g gram grams gramm gramos grammes",
    "kg": "kg kilo kilos",
    "mg": "mg",
    "ml": "ml",
    "l": "l litre litres liter liters litro litros",
    "oz": "oz ounce ounces",
    "lb": "lb lbs pound pounds",
    "inch": "inch inches in",
}
CURRENCY_SIGNS = "$€£¥"
CURRENCY_WORDS = _wordset(
    "usd eur gbp chf sek dkk nok pln cad aud jpy euro euros dollar dollars pounds"
)
# Data-block and chat-template markers our prompts (or a model's own template) use.
PROMPT_MARKERS = (
    "<<<data",
    "<<<end data",
    "<<<",
    ">>>",
    "<|im_start|>",
    "<|im_end|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|eot_id|>",
    "[inst]",
    "[/inst]",
    "<<sys>>",
    "### instruction",
    "### system",
)
ROLE_LINE = re.compile(r"^\s*(?:system|assistant|user|instructions?)\s*:", re.I | re.M)
ECHO_WORDS = 10  # this many words of our instructions in a row, in the output, is an echo

DEFAULT_BANNED = ["best in the world", "guaranteed", "miracle", "cure", "cheapest", "100% perfect"]
MIN_WORDS, MAX_WORDS = 10, 250

# Linear-time patterns only: no nested quantifiers (untrusted text, any length).
_WORD_OR_BREAK = re.compile(r"[^\W\d_]+|[.,;:!?()\[\]]")
_NUMBER = re.compile(r"#?\d[\d.,]*")
_AFTER_NUMBER = re.compile(r"[ \u00a0]?(%|[^\W\d_]+)[ \u00a0]?([^\W\d_]*)")
_PHONE_CHARS = set("0123456789+()-./")
_TLDS = _wordset(
    "com net org shop store info io co eu de es fr it pt nl be at ch uk pl se dk no us app "
    "online site"
)


def language_name(code: str) -> str:
    """A language's English name from Django's own table ("pl" → "Polish", "pt-br" →
    "Brazilian Portuguese"); a code Django does not know is shown as given."""
    from django.conf.locale import LANG_INFO

    # Base languages the detector gives that Django's table has only by script or region
    # ("zh-hans", "zh-hant").
    base_names = {"zh": {"name": "Chinese"}}
    key = (code or "").replace("_", "-").lower()
    for candidate in (key, key.split("-")[0]):
        info = LANG_INFO.get(candidate) or base_names.get(candidate) or {}
        if "fallback" in info:
            info = LANG_INFO.get(info["fallback"][0], {})
        if info.get("name"):
            return info["name"]
    return code


def _index(table: dict[str, str]) -> dict[str, str]:
    return {word: canonical for canonical, words in table.items() for word in words.split()}


_COLOUR_WORDS, _MATERIAL_WORDS = _index(COLOURS), _index(MATERIALS)
_FEE_WORDS, _DURATION_WORDS = _index(FEES), _index(DURATIONS)
_MEASURE_WORDS = _index(MEASURES)


@dataclass(frozen=True)
class Check:
    check: str
    language: str
    ok: bool
    detail: str


@dataclass
class Claims:
    """What a text claims, in comparable form."""

    attributes: dict[str, set[str]] = field(default_factory=dict)  # kind → canonical names
    said: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, canonical) → word
    numbers: list[tuple[frozenset[Decimal], str | None, str]] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    order_refs: set[str] = field(default_factory=set)


# -- reading a text -----------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text.lower())


def _negated(tokens: list[str], at: int) -> bool:
    """Whether the attribute word at `at` is taken back: a negation a few words before it in
    the same clause, or "free" right after it."""
    if at + 1 < len(tokens) and tokens[at + 1] in FREE_AFTER:
        return True
    for token in reversed(tokens[max(0, at - NEGATION_WINDOW) : at]):
        if not token[0].isalpha():
            return False  # a clause ends: "cotton, not polyester" negates only polyester
        if token in NEGATIONS:
            return True
    return False


def _attributes(text: str, claims: Claims) -> None:
    tokens = _WORD_OR_BREAK.findall(text.lower())
    tables = (("colour", _COLOUR_WORDS), ("material", _MATERIAL_WORDS), ("fee", _FEE_WORDS))
    for at, token in enumerate(tokens):
        for kind, index in tables:
            if token in index and not _negated(tokens, at):
                canonical = index[token]
                claims.attributes.setdefault(kind, set()).add(canonical)
                claims.said.setdefault((kind, canonical), token)


def _values(number: str) -> frozenset[Decimal]:
    """The values a written number can mean: "49,00" and "49.00" are 49; "1.234,5" is 1234.5;
    "1,000" is a thousand (or one, in a language with a decimal comma)."""
    dots, commas = number.count("."), number.count(",")
    if dots and commas:
        decimal = "." if number.rfind(".") > number.rfind(",") else ","
        thousands = "," if decimal == "." else "."
        readings = [number.replace(thousands, "").replace(decimal, ".")]
    elif dots + commas > 1:
        readings = [number.replace(".", "").replace(",", "")]
    elif dots + commas == 1:
        whole, _, part = number.replace(",", ".").partition(".")
        readings = [f"{whole}.{part}"] + ([whole + part] if len(part) == 3 else [])
    else:
        readings = [number]
    found = set()
    for reading in readings:
        try:
            found.add(Decimal(reading))
        except InvalidOperation:
            continue
    return frozenset(found)


def _unit(text: str, end: int, start: int) -> str | None:
    """The kind of quantity a number at text[start:end] is: money, percent, a duration
    ("day", "week", …), a measure ("cm", "kg", …), or None for a bare number."""
    if start > 0 and text[start - 1] in CURRENCY_SIGNS:
        return "money"
    if start > 1 and text[start - 1] == " " and text[start - 2] in CURRENCY_SIGNS:
        return "money"
    after = _AFTER_NUMBER.match(text, end)
    if after is None:
        return None
    first, second = after.group(1).lower(), after.group(2).lower()
    if first in CURRENCY_SIGNS or first in CURRENCY_WORDS:
        return "money"
    if first in PERCENT_WORDS or (first, second) in PERCENT_PAIRS:
        return "percent"
    if first in DURATION_QUALIFIERS and second in _DURATION_WORDS:
        return _DURATION_WORDS[second]
    if first in _DURATION_WORDS:
        return _DURATION_WORDS[first]
    if first in _MEASURE_WORDS and after.group(1) == first:  # "5 M" is a size, "5 m" a metre
        return _MEASURE_WORDS[first]
    return None


def _contact(token: str, claims: Claims) -> bool:
    """Records an e-mail address or a URL; True when the token was one."""
    bare = token.strip("()[]<>\"'.,;:!?").lower()
    if "@" in bare and "." in bare.rpartition("@")[2]:
        claims.emails.add(bare)
        return True
    if bare.startswith(("http://", "https://", "www.")):
        claims.urls.add(_url(bare))
        return True
    host = bare.split("/", 1)[0]
    labels = host.split(".")
    if len(labels) >= 2 and all(labels) and labels[-1] in _TLDS and labels[0][:1].isalpha():
        claims.urls.add(_url(bare))
        return True
    return False


def _url(text: str) -> str:
    for prefix in ("https://", "http://", "www."):
        text = text.removeprefix(prefix)
    return text.rstrip("/")


def _phones(tokens: list[str], claims: Claims) -> set[int]:
    """Runs of tokens made of digits and phone punctuation with 7 or more digits in all (an
    order number "#1016" aside): their digits. Returns the positions they took."""
    taken: set[int] = set()
    run: list[int] = []
    for at, token in enumerate([*tokens, ""]):
        token = token.rstrip(".,;:!?")
        if token and set(token) <= _PHONE_CHARS and any(c.isdigit() for c in token):
            run.append(at)
            continue
        digits = "".join(c for i in run for c in tokens[i] if c.isdigit())
        separated = len(run) > 1 or any(c in "+()-/" for i in run for c in tokens[i])
        if len(digits) >= 7 and (separated or len(digits) >= 9):
            claims.phones.add(digits)
            taken.update(run)
        run = []
    return taken


def claims_in(text: str) -> Claims:
    """Everything a text says that the facts must back."""
    claims = Claims()
    _attributes(text, claims)
    tokens = text.split()
    taken = _phones(tokens, claims)
    rest = [t for at, t in enumerate(tokens) if at not in taken and not _contact(t, claims)]
    remaining = " ".join(rest)
    for match in _NUMBER.finditer(remaining):
        written = match.group().rstrip(".,")
        if match.start() > 0 and remaining[match.start() - 1].isalpha():
            continue  # part of a code or a name ("A4", "T2"), not a quantity
        if written.startswith("#"):
            claims.order_refs.add(written.lstrip("#"))
            continue
        end = match.start() + len(written)
        values = _values(written)
        if values:
            claims.numbers.append((values, _unit(remaining, end, match.start()), written))
    return claims


def materials_in(text: str) -> list[str]:
    """The materials a text names (in any of the shop languages), by their English names."""
    return sorted(claims_in(text).attributes.get("material", set()))


# -- comparing a draft with its facts -----------------------------------------------------------


def _number_backed(claim: tuple[frozenset[Decimal], str | None, str], facts: Claims) -> bool:
    """A bare number is backed by the same value anywhere in the facts; a quantity by the
    same value as the same kind of quantity, or as a bare number (a policy's `return_days:
    30`), never by the value as another kind (facts of "30 days" do not back "30 %")."""
    values, unit, _ = claim
    for known, known_unit in ((v, u) for v, u, _ in facts.numbers):
        if values & known and (unit is None or known_unit in (None, unit)):
            return True
    return False


def _phone_backed(digits: str, known: set[str]) -> bool:
    return any(digits == k or digits.endswith(k) or k.endswith(digits) for k in known)


def unsupported(text: str, facts: str, *, prices: list[Decimal] | None = None) -> list[str]:
    """What `text` claims that `facts` does not back, each named as a person would read it."""
    said, known = claims_in(text), claims_in(facts)
    known.numbers += [(frozenset({p}), "money", str(p)) for p in prices or []]
    missing = [
        f"{kind} '{said.said[(kind, name)]}'"
        for kind in ("colour", "material", "fee")
        for name in sorted(said.attributes.get(kind, set()) - known.attributes.get(kind, set()))
    ]
    fact_words = set(_words(facts))
    sizes = {w for w in re.findall(r"\b[A-Za-z]{1,4}\b", text) if w.isupper()}
    missing += [f"size {s}" for s in sorted(sizes) if s.lower() in SIZES - fact_words]
    seen = set()
    for claim in said.numbers:
        if not _number_backed(claim, known) and claim[2] not in seen:
            seen.add(claim[2])
            missing.append(_named_number(claim))
    fact_refs = known.order_refs | {w for v, _, w in known.numbers}
    missing += [f"order #{ref}" for ref in sorted(said.order_refs - fact_refs)]
    missing += [f"e-mail {e}" for e in sorted(said.emails - known.emails)]
    missing += [f"URL {u}" for u in sorted(said.urls - known.urls)]
    missing += [f"phone {p}" for p in sorted(said.phones) if not _phone_backed(p, known.phones)]
    return missing


def _named_number(claim: tuple[frozenset[Decimal], str | None, str]) -> str:
    _, unit, written = claim
    if unit == "money":
        return f"amount {written}"
    if unit == "percent":
        return f"{written} %"
    if unit is None:
        return f"number {written}"
    return f"{written} {unit}{'' if unit in _MEASURE_WORDS.values() else 's'}"


def facts_check(text: str, language: str, facts: str, prices=None) -> Check:
    missing = unsupported(text, facts, prices=prices)
    return Check(
        "facts",
        language,
        not missing,
        "every claim it makes is in the facts"
        if not missing
        else "not in the facts: " + ", ".join(missing),
    )


def _ngrams(words: list[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def markers_check(text: str, language: str, instructions: list[str]) -> Check:
    """No marker of our prompts and no run of ECHO_WORDS words of our own instructions."""
    lowered = text.lower()
    found = [marker for marker in PROMPT_MARKERS if marker in lowered]
    if ROLE_LINE.search(text):
        found.append("a role label (system:, user:, …)")
    ours = [*instructions, untrusted.DATA_RULE]
    echoed = _ngrams(_words(text), ECHO_WORDS) & set().union(
        *(_ngrams(_words(item), ECHO_WORDS) for item in ours)
    )
    if echoed:
        found.append("our instructions echoed: «" + " ".join(sorted(echoed)[0]) + " …»")
    return Check(
        "markers",
        language,
        not found,
        "no prompt markers or echoed instructions"
        if not found
        else "prompt text in the draft: " + ", ".join(dict.fromkeys(found)),
    )


def complete_check(language: str, finish_reason: str | None) -> Check:
    cut = finish_reason == "length"
    return Check(
        "complete",
        language,
        not cut,
        "cut off: the answer reached its token limit" if cut else "the answer ended by itself",
    )


def language_check(language: str, detected: dict | None, *, written_in: str | None) -> Check:
    """`detected` is the local detector's verdict on the draft (None: not checked, for a
    language it does not know); `written_in` is a template's own language when it differs
    from the one asked for."""
    asked = language_name(language)
    if written_in and _base(written_in) != _base(language):
        detail = f"no {asked} template: written in {language_name(written_in)}"
        return Check("language", language, False, detail)
    if written_in:
        return Check("language", language, True, f"written in {asked} (a template)")
    if detected is None:
        return Check("language", language, True, f"not checked: no detector for {asked}")
    found = _base(str(detected.get("language", "")))
    if detected.get("fallback") or found == _base(language):
        return Check("language", language, True, f"written in {asked}")
    return Check("language", language, False, f"written in {language_name(found)}, not in {asked}")


def _base(code: str) -> str:
    return code.replace("_", "-").split("-")[0].lower()


def product_name(title: str) -> str:
    """A product's name as a text says it: its title's words, lowercase, without what follows
    a comma, a dash or a bracket ("Linen napkins, set of 4" is "linen napkins")."""
    return " ".join(_words(re.split(r",| - | \(", title, maxsplit=1)[0]))


def products_named(text: str, titles: tuple[str, ...] | list[str]) -> list[str]:
    """The titles whose product `text` names, in any case, singular or plural ("linen
    shirts" names the "Linen shirt")."""
    said = f" {' '.join(_words(text))} "
    named = []
    for title in titles:
        name = product_name(title)
        if name and re.search(rf" {re.escape(name)}(?:e?s)? ", said):
            named.append(title)
    return named


def products_check(text: str, language: str, other_products: tuple[str, ...] | list[str]) -> Check:
    """No product of the shop named that the text is not about (`other_products`: the titles
    of the shop's products its brief is not about)."""
    named = products_named(text, other_products)
    return Check(
        "products",
        language,
        not named,
        "names only the products it is about"
        if not named
        else "names products the brief is not about: " + ", ".join(named),
    )


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


def check_draft(
    *,
    text: str,
    language: str,
    facts: str,
    instructions: tuple[str, ...] | list[str] = (),
    detected: dict | None = None,
    written_in: str | None = None,
    finish_reason: str | None = None,
    prices: list[Decimal] | None = None,
    other_products: tuple[str, ...] = (),
) -> list[dict]:
    """The checks every draft gets, as the card shows them; `products` too for a draft that
    must not name some of the shop's products (`other_products`: a post's, those its brief
    is not about)."""
    checks = [
        language_check(language, detected, written_in=written_in),
        markers_check(text, language, list(instructions)),
        complete_check(language, finish_reason),
        facts_check(text, language, facts, prices),
    ]
    if other_products:
        checks.append(products_check(text, language, other_products))
    return [asdict(check) for check in checks]


def check_description(
    *,
    text: str,
    language: str,
    facts: str,
    prices: list[Decimal] | None = None,
    banned: list[str] | None = None,
) -> list[dict]:
    """The content checks of one language's description (visible text) against the facts."""
    checks = [
        facts_check(text, language, facts, prices),
        _banned_check(text, language, banned if banned is not None else DEFAULT_BANNED),
        _length_check(text, language),
    ]
    return [asdict(check) for check in checks]


def failed(checks: list[dict]) -> list[dict]:
    return [check for check in checks if not check["ok"]]
