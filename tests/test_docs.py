"""The documentation says what was measured: docs/model.md is what bench/docs.py writes from
the model cards and bench/*.json, and the README stays a short guide whose links resolve."""

import re

from tests.conftest import ROOT


def test_model_page_is_generated_from_the_cards_and_bench():
    from bench.docs import PAGE, render

    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/model.md is out of date: run python -m bench.docs"
    )


def test_measured_blocks_of_other_pages_are_generated_from_bench():
    from bench.docs import pages

    for page, text in pages().items():
        assert page.read_text(encoding="utf-8") == text, (
            f"{page.relative_to(ROOT)} is out of date: run python -m bench.docs"
        )


def test_a_block_without_its_markers_is_an_error():
    import pytest

    from bench.docs import fill_blocks

    assert (
        fill_blocks("a\n<!-- bench:x -->\nold\n<!-- /bench:x -->\nb", {"x": ["new"]})
        == "a\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\nb"
    )
    with pytest.raises(SystemExit, match="markers"):
        fill_blocks("no markers", {"x": ["new"]})


def test_readme_is_a_short_guide_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.encode()) <= 10 * 1024
    assert "make run" in text and "make test" in text


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_one_command_serves_https_wherever_it_is_given():
    """Issue 33 item 11: the plain-HTTP Live page's command left out FER_ADMIN_PASSWORD,
    which the README's includes. Every place that gives the command to serve over HTTPS with
    the certificate ``make cert`` makes gives the same one (``https_command``)."""
    from app_lib.server.secure_context import PageSecurity, https_command, insecure_camera_message

    command = https_command()
    pages = [ROOT / "README.md", ROOT / "docs" / "sharing.md"]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        given = re.findall(r"FER_TLS_CERT=certs/\S+[^`\n]*?make run ADDRESS=0\.0\.0\.0", text)
        assert given and set(given) == {command}, (page.name, given)
    shown = insecure_camera_message(PageSecurity(host="10.0.0.5", https=False, local=False))
    assert f"`{command}`" in shown
