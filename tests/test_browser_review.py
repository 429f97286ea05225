"""The review loop as a reviewer meets it, in a real browser (headless Debian chromium driven by
Playwright, tests/browser.py) against a real Label Studio (tests/labelstudio.py):
push a small store's items, log in through the UI, open the review project, read the guide that
opens before the first task, read a task (question, call, observation wrapped inside its box),
submit a verdict with the mouse, then `biocurate review pull` (the CLI) stores it.

PNGs of the guide as it opens (review_instructions.png) and of the labeling view
(labeling_view.png) are saved to $BIOCURATE_SCREENSHOTS, default data/out/screenshots/ (ignored by git).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biocurate import review
from biocurate.cli import app
from biocurate.config import load_config
from biocurate.store import Store
from tests.browser import browser_page
from tests.pipeline_helpers import write_config
from tests.test_review import SPECS, add_items

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("BIOCURATE_SCREENSHOTS") or ROOT / "data/out/screenshots")
# The login scripts/label_studio.sh presets for the local server.
USERNAME, PASSWORD = "admin@biocurate.local", "biocurate-local-only"

# A real NCBI esummary observation as the observation builder writes it (compact JSON, one line of
# about 1,100 characters: what used to run off the right edge of the labeling view).
OBSERVATION = (
    '{"records":{"6392":{"chromosome":"11","description":"succinate dehydrogenase complex subunit D",'
    '"genomicinfo":[{"chraccver":"NC_000011.10","chrloc":"11","chrstart":112086872,"chrstop":112095793,'
    '"exoncount":6}],"maplocation":"11q23.1","mim":["602690"],"name":"SDHD","nomenclaturestatus":"Official",'
    '"organism":{"commonname":"human","scientificname":"Homo sapiens","taxid":9606},'
    '"otheraliases":"CBT1, CII-4, CWS3, MC2DN3, PGL, PGL1, QPs3, SDH4, cybS",'
    '"otherdesignations":"succinate dehydrogenase [ubiquinone] cytochrome b small subunit, mitochondrial|'
    "succinate dehydrogenase complex subunit D integral membrane protein|succinate-ubiquinone "
    'oxidoreductase cytochrome b smal... (264 chars)","summary":"This gene encodes a member of complex II '
    "of the respiratory chain, which is responsible for the oxidation of succinate. The encoded protein is "
    'one of two integral membrane proteins anchoring the compl... (661 chars)","uid":"6392"}},"uids":["6392"]}'
)


def review_config(tmp_path: Path, url: str) -> Path:
    return write_config(
        tmp_path / "c.toml",
        {
            "store": {"path": str(tmp_path / "s.duckdb")},
            "review": {"url": url, "project_title": f"browser {uuid.uuid4().hex[:8]}"},
            "publish": {"out_dir": str(tmp_path / "versions")},
        },
    )


def no_horizontal_overflow(locator) -> bool:
    return locator.evaluate("e => e.scrollWidth <= e.clientWidth + 1")


def review_in_the_browser(url: str, tmp_path: Path) -> None:
    config_file = review_config(tmp_path, url)
    cfg = load_config(config_file)
    with Store(cfg.store.path).open() as con:
        ids = add_items(con, SPECS[:2], observation=OBSERVATION)
        assert review.push(cfg, con)["pushed"] == 2
        [(project_id,)] = con.execute("select distinct project_id from review_tasks").fetchall()
    question_of = {text: query_id for (_, text, _, _), query_id in zip(SPECS[:2], ids, strict=True)}

    with browser_page(viewport={"width": 1280, "height": 900}) as page:
        page.set_default_timeout(60_000)  # a loaded 2-core machine renders slowly
        page.goto(f"{url}/user/login/")
        page.fill("input[name=email]", USERNAME)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/user/login" not in u)

        page.goto(f"{url}/projects/{project_id}/data")
        page.get_by_text("Label All Tasks").click()
        # The reviewer guide opens before the first task, as the project's instructions.
        dialog = page.locator(".lsf-modal-ls__content", has_text="Labeling Instructions")
        dialog.get_by_role("heading", name="Reviewer guide").wait_for()
        assert dialog.get_by_role("heading", name="The verdict (required)").is_visible()
        assert dialog.get_by_role("cell", name="identifier_mismatch").is_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "review_instructions.png"))
        dialog.get_by_role("button", name="Close modal").click()
        dialog.wait_for(state="hidden")

        # The task: question, call and observation, each visible; the observation wrapped in its box.
        # Its blocks are waited for: on a loaded machine the task renders after the guide closes.
        page.locator(".bc-block").first.wait_for()
        shown = [text for text in question_of if page.get_by_text(text, exact=True).is_visible()]
        assert len(shown) == 1, shown
        query_id = question_of[shown[0]]
        blocks = page.locator(".bc-block")
        assert blocks.count() == 2
        call, observation = blocks.nth(0), blocks.nth(1)
        assert call.get_by_text('"identifier": ', exact=False).is_visible()
        fact = observation.get_by_text('"description": "succinate dehydrogenase complex subunit D"', exact=False)
        assert fact.is_visible()
        assert no_horizontal_overflow(call) and no_horizontal_overflow(observation)
        # The longest line (the summary) wraps inside the box: nothing past its right edge.
        summary = observation.get_by_text("This gene encodes a member of complex II", exact=False)
        summary.scroll_into_view_if_needed()
        box, line = observation.bounding_box(), summary.bounding_box()
        assert line["x"] + line["width"] <= box["x"] + box["width"] + 1
        assert page.get_by_text("Automatic judge (rules-v1): accept, score", exact=False).is_visible()
        # Nothing pre-selected: the judge's verdict is not a prediction in the form.
        for verdict in ("accept", "reject", "accept_with_edit"):
            assert page.locator(f"label:has(input[name={verdict}])").is_visible()
        assert page.locator("input[type=radio]:checked").count() == 0

        page.screenshot(path=str(SCREENSHOTS / "labeling_view.png"))

        # The form's radio inputs are named after their choice values (annotations/label_config.xml).
        page.locator("label:has(input[name=reject])").click()
        page.locator("label:has(input[name=observation_uninformative])").click()
        page.get_by_role("button", name="Submit current annotation").click()
        page.wait_for_function(
            "async ([p]) => (await (await fetch(`/api/projects/${p}`)).json()).num_tasks_with_annotations === 1",
            arg=[project_id],
        )

    out = CliRunner().invoke(app, ["review", "pull", "--config", str(config_file)])
    assert out.exit_code == 0, out.output
    with Store(cfg.store.path).open(read_only=True) as con:
        stored = con.execute("select query_id, verdict, reject_reason, annotator from annotations").fetchall()
    assert stored == [(query_id, "reject", "observation_uninformative", USERNAME)]


@pytest.mark.labelstudio
def test_a_reviewer_reads_the_guide_and_a_task_and_the_verdict_is_pulled(label_studio, tmp_path, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    review_in_the_browser(label_studio.url, tmp_path)
