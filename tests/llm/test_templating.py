from __future__ import annotations

import ast
import gettext
import io
import re
import shutil
import subprocess
import tokenize
from pathlib import Path

import pytest
from django.utils import translation
from django.utils.translation.template import templatize

from agents.llm import templating
from agents.llm.templating import LANGUAGES, TEMPLATES, has_template, render
from agents.pipelines import PermanentError

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [language for language in LANGUAGES if language != "en"]
CATALOGS = {language: ROOT / "locale" / language / "LC_MESSAGES" for language in TRANSLATED}

REPLY = {
    "shop_name": "Lumen & Co",
    "customer_name": "Ana",
    "order_name": "#1001",
    "currency": "EUR",
}
CONTEXTS = {
    "reply.order_status": {
        **REPLY,
        "status": "shipped",
        "carrier": "DHL",
        "tracking_number": "JD0123",
        "tracking_url": "https://track.example/JD0123",
        "estimated_delivery": "2025-07-04",
    },
    "reply.shipping": {
        **REPLY,
        "delivery_days_min": 3,
        "delivery_days_max": 5,
        "free_shipping_over": 50,
        "shipping_policy_url": "https://shop.example/shipping",
    },
    "reply.refund": {
        **REPLY,
        "refund_status": "issued",
        "refund_amount": "1249.5",
        "refund_days": 10,
        "return_policy_url": "https://shop.example/returns",
    },
    "reply.returns": {
        **REPLY,
        "return_days": 30,
        "refund_days": 5,
        "return_policy_url": "https://shop.example/returns",
    },
    "reply.cancel_order": {**REPLY, "cancel_status": "cancelled"},
    "reply.payment_issue": {
        **REPLY,
        "payment_url": "https://shop.example/pay/1001",
        "payment_methods": ["Visa", "Mastercard", "PayPal"],
    },
    "reply.acknowledge": {**REPLY, "response_hours": 24},
    "description.attributes": {
        "title": "Linen Shirt",
        "vendor": "Acme",
        "product_type": "Shirt",
        "options": [
            {"name": "Color", "values": ["Blue", "White", "Sand"]},
            {"name": "Size", "values": ["S", "M"]},
        ],
        "tags": ["summer", "linen"],
        "price_min": "19.9",
        "price_max": "29.9",
        "currency": "EUR",
        "attributes": {"material": "100% linen"},
    },
    **{
        f"content.{name}": {
            "shop_name": "Lumen & Co",
            "topic": "Linen in summer",
            "audience": "people who cycle to work",
            "points": ["Linen Shirt: 100% linen, in blue, white and sand."],
        }
        for name in ("outline", "blog", "newsletter", "social", "ideas")
    },
}
# A phrase each translation must contain: real text in the language, not just "it differs".
PHRASES = {
    "reply.order_status": {
        "es": "su pedido #1001. Se ha enviado con DHL y ya está en camino.",
        "fr": "votre commande #1001. Elle a été expédiée via DHL",
        "de": "Ihre Bestellung wurde mit DHL versandt",
        "it": "al suo ordine #1001. È stato spedito con DHL",
        "pt": "o seu pedido #1001. Ele foi enviado via DHL",
    },
    "reply.shipping": {
        "es": "Los pedidos suelen llegar en un plazo de 3 a 5 días hábiles.",
        "fr": "Les commandes arrivent généralement sous 3 à 5 jours ouvrés.",
        "de": "Bestellungen kommen in der Regel innerhalb von 3 bis 5 Werktagen an.",
        "it": "Di solito gli ordini arrivano in 3-5 giorni lavorativi.",
        "pt": "Os pedidos costumam chegar em 3 a 5 dias úteis.",
    },
    "reply.refund": {
        "es": "Hemos emitido el reembolso de su pedido #1001.",
        "fr": "Nous avons effectué le remboursement de votre commande #1001.",
        "de": "Wir haben die Erstattung für Ihre Bestellung #1001 veranlasst.",
        "it": "Abbiamo emesso il rimborso per il suo ordine #1001.",
        "pt": "Emitimos o reembolso do seu pedido #1001.",
    },
    "reply.returns": {
        "es": "Puede devolver los artículos en un plazo de 30 días desde la entrega.",
        "fr": "Vous pouvez retourner les articles dans un délai de 30 jours après la livraison.",
        "de": "Sie können Artikel innerhalb von 30 Tagen nach der Lieferung zurückschicken.",
        "it": "Può restituire gli articoli entro 30 giorni dalla consegna.",
        "pt": "Pode devolver os artigos no prazo de 30 dias após a entrega.",
    },
    "reply.cancel_order": {
        "es": "Su pedido #1001 ha sido cancelado.",
        "fr": "Votre commande #1001 a été annulée.",
        "de": "Ihre Bestellung #1001 wurde storniert.",
        "it": "Il suo ordine #1001 è stato annullato.",
        "pt": "Seu pedido #1001 foi cancelado.",
    },
    "reply.payment_issue": {
        "es": "Aceptamos los siguientes métodos de pago: Visa, Mastercard y PayPal.",
        "fr": "Nous acceptons les moyens de paiement suivants : Visa, Mastercard et PayPal.",
        "de": "Wir akzeptieren folgende Zahlungsarten: Visa, Mastercard und PayPal.",
        "it": "Accettiamo i seguenti metodi di pagamento: Visa, Mastercard e PayPal.",
        "pt": "Aceitamos as seguintes formas de pagamento: Visa, Mastercard e PayPal.",
    },
    "reply.acknowledge": {
        "es": "le responderá personalmente en un plazo de 24 horas.",
        "fr": "vous répondra personnellement sous 24 heures.",
        "de": "wird Ihnen innerhalb von 24 Stunden persönlich antworten.",
        "it": "le risponderà personalmente entro 24 ore.",
        "pt": "responderá a você pessoalmente em até 24 horas.",
    },
    "content.outline": {
        "es": "Público: people who cycle to work",
        "fr": "Public : people who cycle to work",
        "de": "Zielgruppe: people who cycle to work",
        "it": "Pubblico: people who cycle to work",
        "pt": "Público: people who cycle to work",
    },
    "content.blog": {
        "es": "Una publicación para people who cycle to work de Lumen & Co.",
        "fr": "Un article pour people who cycle to work de la part de Lumen & Co.",
        "de": "Ein Beitrag für people who cycle to work von Lumen & Co.",
        "it": "Un articolo per people who cycle to work da Lumen & Co.",
        "pt": "Uma publicação para people who cycle to work da Lumen & Co.",
    },
    "content.newsletter": {
        "es": "¡Hasta pronto! Lumen & Co",
        "fr": "À bientôt ! Lumen & Co",
        "de": "Bis bald! Lumen & Co",
        "it": "A presto! Lumen & Co",
        "pt": "Até breve! Lumen & Co",
    },
    "content.social": {
        "es": "Linen in summer · para people who cycle to work · Lumen & Co",
        "fr": "Linen in summer · pour people who cycle to work · Lumen & Co",
        "de": "Linen in summer · für people who cycle to work · Lumen & Co",
        "it": "Linen in summer · per people who cycle to work · Lumen & Co",
        "pt": "Linen in summer · para people who cycle to work · Lumen & Co",
    },
    "content.ideas": {
        "es": "Linen in summer en un minuto",
        "fr": "Linen in summer en une minute",
        "de": "Linen in summer in einer Minute",
        "it": "Linen in summer in un minuto",
        "pt": "Linen in summer em um minuto",
    },
    "description.attributes": {
        "es": "Disponible en 3 colores: Blue, White y Sand",
        "fr": "Disponible en 3 couleurs : Blue, White et Sand",
        "de": "Erhältlich in 3 Farben: Blue, White und Sand",
        "it": "Disponibile in 3 colori: Blue, White e Sand",
        "pt": "Disponível em 3 cores: Blue, White e Sand",
    },
}
HOSTILE = (
    "{{ shop_name }}{% load static %}{% debug %} <script>alert('x')</script> & %(order_name)s %s"
)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders_in_every_language(name, language):
    result = render(name, CONTEXTS[name], language)

    assert result == {
        "content": result["content"],
        "language": language,
        "tier": "template",
        "template": name,
        "model": f"template:{name}",
    }
    assert result["content"].strip() == result["content"] != ""
    assert "\n\n\n" not in result["content"]  # tidy: never more than one blank line


@pytest.mark.parametrize("language", TRANSLATED)
@pytest.mark.parametrize("name", TEMPLATES)
def test_a_translation_reads_in_its_own_language_not_english(name, language):
    english = render(name, CONTEXTS[name], "en")["content"]
    translated = render(name, CONTEXTS[name], language)["content"]

    assert translated != english
    assert PHRASES[name][language] in translated


def test_an_order_status_reply_in_english_reads_as_a_customer_would_see_it():
    result = render("reply.order_status", CONTEXTS["reply.order_status"], "en")

    assert result["content"] == (
        "Hello Ana,\n"
        "\n"
        "Thank you for contacting us about your order #1001. "
        "It has shipped with DHL and is on its way to you.\n"
        "\n"
        "Tracking number: JD0123\n"
        "You can follow your parcel here: https://track.example/JD0123\n"
        "Estimated delivery: July 4, 2025\n"
        "\n"
        "If you have any other questions, simply reply to this message.\n"
        "\n"
        "Kind regards,\n"
        "The Lumen & Co team"
    )


def test_a_reply_in_spanish_uses_the_formal_register_from_greeting_to_sign_off():
    context = {"shop_name": "Lumen", "customer_name": "Ana", "order_name": "#7"}

    content = render("reply.cancel_order", context, "es")["content"]

    assert content == (
        "Hola, Ana:\n"
        "\n"
        "Hemos recibido su solicitud de cancelación del pedido #7. "
        "Le confirmaremos en cuanto se haya procesado la cancelación.\n"
        "\n"
        "Si tiene cualquier otra pregunta, basta con que responda a este mensaje.\n"
        "\n"
        "Saludos cordiales,\n"
        "El equipo de Lumen"
    )


def test_a_description_in_german_lists_attributes_options_price_and_tags():
    content = render("description.attributes", CONTEXTS["description.attributes"], "de")["content"]

    assert content == (
        "Linen Shirt\n"
        "Shirt von Acme\n"
        "\n"
        "Material: 100% linen\n"
        "\n"
        "Erhältlich in 3 Farben: Blue, White und Sand\n"
        "Erhältlich in 2 Größen: S und M\n"
        "\n"
        "Preis: von 19,90 EUR bis 29,90 EUR\n"
        "\n"
        "Schlagwörter: summer, linen"
    )


def test_a_list_given_as_one_piece_of_text_is_shown_as_given():
    context = {"shop_name": "Lumen", "payment_methods": "Visa or PayPal"}

    content = render("reply.payment_issue", context, "en")["content"]

    assert "We accept the following payment methods: Visa or PayPal." in content


def test_a_description_needs_only_a_title():
    assert render("description.attributes", {"title": "Mug"}, "fr")["content"] == "Mug"


@pytest.mark.parametrize(
    ("language", "values", "line"),
    [
        ("en", ["Blue"], "Available in 1 colour: Blue"),
        ("en", ["Blue", "White", "Sand"], "Available in 3 colours: Blue, White and Sand"),
        ("de", ["Blau"], "Erhältlich in 1 Farbe: Blau"),
        ("de", ["Blau", "Weiß", "Sand"], "Erhältlich in 3 Farben: Blau, Weiß und Sand"),
        ("fr", ["Bleu"], "Disponible en 1 couleur : Bleu"),
        ("fr", ["Bleu", "Blanc"], "Disponible en 2 couleurs : Bleu et Blanc"),
    ],
)
def test_the_colour_count_takes_the_plural_form_of_the_language(language, values, line):
    context = {"title": "Mug", "options": [{"name": "Colour", "values": values}]}

    assert render("description.attributes", context, language)["content"] == f"Mug\n\n{line}"


def test_colour_and_size_options_are_recognised_by_their_name_in_other_languages():
    options = [
        {"name": "Farbe", "values": ["Rot", "Grün"]},
        {"name": "Talla", "values": ["M"]},
        {"name": "Finish", "values": ["Matt", "Glossy"]},
        {"name": "Title", "values": ["Default Title"]},  # Shopify's "no variants"
    ]

    content = render("description.attributes", {"title": "Mug", "options": options}, "en")

    assert content["content"] == (
        "Mug\n"
        "\n"
        "Available in 2 colours: Rot and Grün\n"
        "Available in 1 size: M\n"
        "Finish: Matt and Glossy"
    )


@pytest.mark.parametrize(
    ("language", "hours", "phrase"),
    [
        ("en", 1, "within 1 hour."),
        ("en", 48, "within 48 hours."),
        ("de", 1, "innerhalb von 1 Stunde persönlich"),
        ("de", 48, "innerhalb von 48 Stunden persönlich"),
    ],
)
def test_the_handoff_promises_an_answer_within_the_hours_given(language, hours, phrase):
    context = {"shop_name": "Lumen", "response_hours": hours}

    assert phrase in render("reply.acknowledge", context, language)["content"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_untrusted_values_are_inserted_literally_and_never_evaluated(language):
    context = {
        **CONTEXTS["reply.order_status"],
        "customer_name": HOSTILE,
        "order_name": HOSTILE,
        "carrier": HOSTILE,
    }

    content = render("reply.order_status", context, language)["content"]

    assert content.count(HOSTILE) == 3
    assert "&lt;" not in content and "&amp;" not in content  # plain text, not HTML
    assert content.count("Lumen & Co") == 1  # only the sign-off: "{{ shop_name }}" stayed text


def test_an_untrusted_product_title_with_template_syntax_stays_text():
    context = {"title": HOSTILE, "vendor": "{% now 'Y' %}", "attributes": {"care": "{{ title }}"}}

    content = render("description.attributes", context, "it")["content"]

    assert content == f"{HOSTILE}\nMarca: {{% now 'Y' %}}\n\nManutenzione: {{{{ title }}}}"


@pytest.mark.parametrize(
    ("language", "amount"), [("en", "1,249.50 EUR"), ("de", "1.249,50 EUR"), ("it", "1.249,50 EUR")]
)
def test_amounts_are_formatted_for_the_language(language, amount):
    content = render("reply.refund", CONTEXTS["reply.refund"], language)["content"]

    assert amount in content


@pytest.mark.parametrize(
    ("language", "given", "shown"),
    [
        ("en", "2025-07-04", "July 4, 2025"),
        ("es", "2025-07-04", "4 de julio de 2025"),
        ("de", "2025-07-04", "4. Juli 2025"),
        ("fr", "next Tuesday", "next Tuesday"),  # free text from a carrier is shown as given
    ],
)
def test_an_estimated_delivery_date_is_written_the_way_the_language_writes_dates(
    language, given, shown
):
    context = {"shop_name": "Lumen", "status": "shipped", "estimated_delivery": given}

    content = render("reply.order_status", context, language)["content"]

    assert f": {shown}\n" in content


@pytest.mark.parametrize("status", templating.ORDER_STATUSES)
def test_each_order_status_gets_its_own_sentence(status):
    context = {"shop_name": "Lumen", "status": status}
    unknown = render("reply.order_status", {**context, "status": "on the moon"}, "en")

    assert render("reply.order_status", context, "en")["content"] != unknown["content"]


@pytest.mark.parametrize("requested", ["ja", "", "xx-YY"])
def test_an_unsupported_language_falls_back_to_english_and_says_so(requested):
    context = CONTEXTS["reply.acknowledge"]

    result = render("reply.acknowledge", context, requested)

    assert result["language"] == "en"
    assert result["requested_language"] == requested
    assert result["content"] == render("reply.acknowledge", context, "en")["content"]


def test_a_regional_variant_gets_its_base_language_and_says_what_was_asked():
    result = render("reply.acknowledge", CONTEXTS["reply.acknowledge"], "pt-BR")

    assert result["language"] == "pt"
    assert result["requested_language"] == "pt-BR"
    assert PHRASES["reply.acknowledge"]["pt"] in result["content"]


def test_an_unknown_template_is_a_permanent_error():
    assert has_template("reply.refund")
    assert not has_template("reply.poem")
    with pytest.raises(PermanentError, match=r"no template named 'reply\.poem'"):
        render("reply.poem", REPLY, "en")


@pytest.mark.parametrize(
    ("name", "context", "message"),
    [
        ("reply.refund", {"customer_name": "Ana"}, "needs a non-empty 'shop_name'"),
        ("reply.returns", {"shop_name": "L"}, "needs a non-empty 'return_days'"),
        ("description.attributes", {"vendor": "Acme"}, "needs a non-empty 'title'"),
        ("reply.refund", {"shop_name": "L", "refund_amount": "lots"}, "refund_amount must be"),
        ("reply.refund", {"shop_name": "L", "refund_amount": "NaN"}, "refund_amount must be"),
        ("reply.acknowledge", {"shop_name": "L", "response_hours": "soon"}, "whole number"),
    ],
)
def test_bad_input_is_a_permanent_error(name, context, message):
    with pytest.raises(PermanentError, match=message):
        render(name, context, "en")


def test_the_same_input_gives_byte_identical_output_whatever_was_rendered_before():
    def everything(languages: tuple[str, ...]) -> dict[tuple[str, str], bytes]:
        return {
            (name, language): render(name, CONTEXTS[name], language)["content"].encode()
            for name in TEMPLATES
            for language in languages
        }

    assert everything(LANGUAGES) == everything(tuple(reversed(LANGUAGES))) == everything(LANGUAGES)


def test_rendering_leaves_the_active_language_and_the_callers_context_alone():
    context = {**CONTEXTS["description.attributes"]}
    before = repr(context)

    with translation.override("fr"):
        render("description.attributes", context, "de")
        assert translation.get_language() == "fr"
    assert repr(context) == before


# The catalogs: complete, current with the sources, and compiled.


def _po_entries(path: Path) -> list[dict]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (a list) and flags."""
    entries: list[dict] = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        entry: dict = {"flags": [], "msgstr": []}
        key = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"] += [flag.strip() for flag in line[2:].split(",")]
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                entry[key] = _append(entry[key], ast.literal_eval(line))
            else:
                key, _, literal = line.partition(" ")
                if key.startswith("msgstr"):
                    entry["msgstr"].append(ast.literal_eval(literal))
                    key = "msgstr"
                else:
                    entry[key] = ast.literal_eval(literal)
        entries.append(entry)
    return entries


def _append(value: str | list[str], more: str) -> str | list[str]:
    if isinstance(value, list):  # a continuation of the last msgstr[n]
        return [*value[:-1], value[-1] + more]
    return value + more


def _source_msgids() -> set[tuple[str | None, str, str | None]]:
    """Every (context, msgid, plural) the templates and templating.py ask to translate."""
    found = set()
    for template in (ROOT / "templates" / "llm").rglob("*.txt"):
        code = templatize(template.read_text(encoding="utf-8"))
        found |= _gettext_calls(tokenize.generate_tokens(io.StringIO(code).readline))
    module = Path(templating.__file__).read_text(encoding="utf-8")
    return found | _gettext_calls(tokenize.generate_tokens(io.StringIO(module).readline))


def _gettext_calls(tokens) -> set[tuple[str | None, str, str | None]]:
    calls, tokens = set(), list(tokens)
    for index, token in enumerate(tokens):
        is_call = index + 1 < len(tokens) and tokens[index + 1].string == "("
        if token.type == tokenize.NAME and token.string in GETTEXT_ARGUMENTS and is_call:
            strings = []
            for following in tokens[index + 2 :]:
                if following.string == ")":
                    break
                if following.type == tokenize.STRING:
                    strings.append(ast.literal_eval(following.string))
            calls.add(GETTEXT_ARGUMENTS[token.string](strings))
    return calls


GETTEXT_ARGUMENTS = {
    "gettext": lambda s: (None, s[0], None),
    "gettext_lazy": lambda s: (None, s[0], None),
    "ngettext": lambda s: (None, s[0], s[1]),
    "pgettext": lambda s: (s[0], s[1], None),
    "npgettext": lambda s: (s[0], s[1], s[2]),
}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_catalog_translates_every_message_with_nothing_fuzzy(language):
    header, *entries = _po_entries(CATALOGS[language] / "django.po")

    assert f"Language: {language}\n" in header["msgstr"][0]
    assert "fuzzy" not in header["flags"]
    for entry in entries:
        assert "fuzzy" not in entry["flags"], entry["msgid"]
        assert entry["msgstr"] and all(entry["msgstr"]), f"untranslated: {entry['msgid']!r}"
        assert len(entry["msgstr"]) == (2 if "msgid_plural" in entry else 1), entry["msgid"]


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_catalog_holds_exactly_the_messages_the_sources_ask_for(language):
    _header, *entries = _po_entries(CATALOGS[language] / "django.po")

    in_catalog = {(e.get("msgctxt"), e["msgid"], e.get("msgid_plural")) for e in entries}

    assert in_catalog == _source_msgids(), "run makemessages (see agents/llm/templating.py)"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_compiled_catalog_says_what_its_po_file_says(language):
    _header, *entries = _po_entries(CATALOGS[language] / "django.po")
    with (CATALOGS[language] / "django.mo").open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)

    for entry in entries:
        if "msgid_plural" in entry:
            one, many = (1, 2)  # the two forms in every language we ship
            assert (
                catalog.ngettext(entry["msgid"], entry["msgid_plural"], one) == entry["msgstr"][0]
            )
            assert (
                catalog.ngettext(entry["msgid"], entry["msgid_plural"], many) == entry["msgstr"][1]
            )
        elif "msgctxt" in entry:
            assert catalog.pgettext(entry["msgctxt"], entry["msgid"]) == entry["msgstr"][0]
        else:
            assert catalog.gettext(entry["msgid"]) == entry["msgstr"][0]


@pytest.mark.skipif(
    shutil.which("msgfmt") is None, reason="msgfmt (Debian's gettext) is not installed"
)
@pytest.mark.parametrize("language", TRANSLATED)
def test_every_mo_file_is_what_msgfmt_makes_of_its_po_file(language, tmp_path):
    compiled = tmp_path / "django.mo"

    subprocess.run(
        ["msgfmt", "--check", "-o", str(compiled), str(CATALOGS[language] / "django.po")],
        check=True,
    )

    assert compiled.read_bytes() == (CATALOGS[language] / "django.mo").read_bytes()


def test_no_line_of_a_reply_ends_in_spaces_and_placeholders_are_all_filled():
    for name in TEMPLATES:
        for language in LANGUAGES:
            content = render(name, CONTEXTS[name], language)["content"]
            assert not re.search(r"[ \t]$", content, re.MULTILINE), (name, language)
            assert "%(" not in content and "{{" not in content, (name, language)


def test_a_blog_skeleton_has_the_topic_as_its_title_then_the_brief_and_its_facts():
    result = render("content.blog", CONTEXTS["content.blog"], "en")

    assert result["content"] == (
        "Linen in summer\n\n"
        "A post for people who cycle to work from Lumen & Co.\n\n"
        "Linen Shirt: 100% linen, in blue, white and sand."
    )


def test_content_skeletons_need_a_topic():
    with pytest.raises(PermanentError, match="topic"):
        render("content.social", {"shop_name": "Lumen & Co"}, "en")
