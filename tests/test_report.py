"""The HTML report: its structure on a tiny run, and what a real browser shows of it."""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

import pytest

from tokendistill.cli import main
from tokendistill.report import ReportConfig, build_report


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, t5_dir: Path) -> Path:
    """extract (train and test split, two methods) -> standard and multitask students -> evaluation."""
    root = tmp_path_factory.mktemp("run")
    common = ["--task", "keywords", "--device", "cpu"]
    for split, method in (("train", "saliency"), ("test", "saliency"), ("test", "grad_x_input")):
        assert main(["extract", *common, "--teacher", str(t5_dir), "--output", str(root / f"rationales-{split}-{method}"),
                     "--split", split, "--limit", "16", "--top-k", "3", "--max-new-tokens", "3",
                     "--method", method]) == 0
    for mode in ("standard", "multitask"):
        for seed in ("0", "1"):
            student = root / "students" / f"{mode}-{seed}"
            assert main(["train", *common, "--student", str(t5_dir), "--output", str(student), "--mode", mode,
                         "--rationales", str(root / "rationales-train-saliency"), "--limit", "16", "--steps", "3",
                         "--batch-size", "4", "--seed", seed]) == 0
            assert main(["evaluate", *common, "--model", str(student), "--output", str(student / "eval"),
                         "--split", "test", "--limit", "16", "--max-new-tokens", "3"]) == 0
    return root


def test_without_a_teacher_check_the_table_gives_the_openings_teacher_figure(tiny_run: Path) -> None:
    page = html.unescape(build_report(ReportConfig(run_dir=str(tiny_run))).read_text(encoding="utf-8"))
    opening = re.search(r"<p id='opening'>(.*?)</p>", page).group(1)
    figure = re.search(r"right on (\d+\.\d%) of the (\d+) examples", opening)
    assert figure, opening
    results = page.split("<h2 id='results'>")[1].split("</table>")[0]
    teacher_cells = {re.findall(r"<td[^>]*>(.*?)</td>", row)[1] for row in re.findall(r"<tr>(.*?)</tr>", results)
                     if "<td" in row}
    # Not "n/a" beside an opening that gives a figure: the same figure, on the same rows.
    assert teacher_cells == {f"{figure.group(1)} on the {figure.group(2)} rows its words were attributed on"}


def test_report_has_every_section_and_embeds_every_image(tiny_run: Path) -> None:
    page = build_report(ReportConfig(run_dir=str(tiny_run))).read_text(encoding="utf-8")
    for section in ("results", "plots", "words", "examples", "config"):
        assert f"id='{section}'" in page, section
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) >= 5  # overlap by task, overlap vs k, accuracy, learning curves, method agreement
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page), "the report must not load anything"
    assert "http://" not in page and "https://" not in page
    assert page.count("<article class=\"example\"") == 16
    # The students were evaluated on the attributed test split: their predictions sit beside the examples.
    assert "data-student-standard=" in page and "data-student-multitask=" in page
    assert "<td>multitask</td>" in page and "<td>standard</td>" in page


def test_report_of_an_extract_run_alone(tmp_path: Path, tiny_run: Path) -> None:
    shutil.copytree(tiny_run / "rationales-train-saliency", tmp_path / "r")
    page = build_report(ReportConfig(run_dir=str(tmp_path / "r"))).read_text(encoding="utf-8")
    assert "No evaluations in this run." in page and page.count("<article class=\"example\"") == 16


def test_report_of_an_empty_folder_is_a_user_error(tmp_path: Path) -> None:
    assert main(["report", str(tmp_path)]) == 2


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("TOKENDISTILL_REQUIRE_BROWSER"):
            pytest.fail("chromium and chromedriver are required here (Debian: apt-get install chromium chromium-driver)")
        pytest.skip("chromium/chromedriver not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,2000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_browser_shows_highlighted_examples_and_plots(tiny_run: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    report = build_report(ReportConfig(run_dir=str(tiny_run), output=str(tmp_path / "report.html")))
    browser = _browser()
    try:
        browser.get(report.resolve().as_uri())
        images = browser.find_elements(By.CSS_SELECTOR, "figure img")
        assert len(images) >= 5
        for image in images:
            assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0
            assert image.size["width"] > 100 and image.size["height"] > 100
        examples = browser.find_elements(By.CSS_SELECTOR, "article.example")
        assert len(examples) == 16 and all(e.size["height"] > 0 for e in examples)
        # The opening says what ran, and the teacher's figure is the one the tables show.
        opening = browser.find_element(By.ID, "opening").text
        assert opening.startswith("2 student cells (multitask, standard; up to 2 seeds each) on keywords.")
        overlap_row = browser.find_elements(By.XPATH, "//table[.//th[text()='top-k words hold a gold word']]//tbody/tr")[0]
        teacher_figure = overlap_row.find_elements(By.TAG_NAME, "td")[3].text
        assert f"right on {teacher_figure} of the" in opening and "Best cell:" in opening
        # One interval per comparison, the seeds'; the rows' is its tooltip, and the legend says which is which.
        caption = browser.find_element(By.XPATH, "//h2[@id='results']/following::table[1]/caption").text
        assert "the interval a claim about the method rests on" in caption and "hover the figure" in caption
        detailed = browser.find_elements(By.CSS_SELECTOR, "td.detailed")
        assert detailed and any("over the test rows" in cell.get_attribute("title") for cell in detailed)
        chosen = browser.find_elements(By.CSS_SELECTOR, "article.example .w.r")
        assert chosen and all(word.size["width"] > 0 for word in chosen)
        shaded = [w.value_of_css_property("background-color") for w in browser.find_elements(By.CSS_SELECTOR, ".w")]
        assert any(color.startswith("rgba(247, 103, 7") for color in shaded)

        # Filtering to the teacher's wrong answers hides exactly the examples it got right.
        wrong = sum(e.get_attribute("data-teacher") == "wrong" for e in examples)
        Select(browser.find_element(By.ID, "f-teacher")).select_by_visible_text("wrong")
        visible = [e for e in examples if e.is_displayed()]
        assert len(visible) == wrong
        assert browser.find_element(By.ID, "shown").text == str(wrong)
        Select(browser.find_element(By.ID, "f-teacher")).select_by_visible_text("right")
        assert sum(e.is_displayed() for e in examples) == 16 - wrong
        Select(browser.find_element(By.ID, "f-teacher")).select_by_visible_text("any")
        Select(browser.find_element(By.ID, "f-mode")).select_by_visible_text("multitask")
        Select(browser.find_element(By.ID, "f-student")).select_by_visible_text("wrong")
        student_wrong = sum(e.get_attribute("data-student-multitask") == "wrong" for e in examples)
        assert sum(e.is_displayed() for e in examples) == student_wrong
        Select(browser.find_element(By.ID, "f-student")).select_by_visible_text("any")
        legend = browser.find_element(By.ID, "legend")
        assert legend.is_displayed() and "rationale word" in legend.text and "high" in legend.text
        browser.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000
    finally:
        browser.quit()


def test_browser_pages_through_every_example(tiny_run: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    report = build_report(ReportConfig(run_dir=str(tiny_run), output=str(tmp_path / "paged.html"), page_size=5))
    browser = _browser()
    try:
        browser.get(report.resolve().as_uri())
        examples = browser.find_elements(By.CSS_SELECTOR, "article.example")
        assert len(examples) == 16  # every example is in the page, five at a time
        seen = []
        for page in range(4):
            visible = [e.find_element(By.CSS_SELECTOR, ".id").text for e in examples if e.is_displayed()]
            assert len(visible) == (5 if page < 3 else 1)
            assert browser.find_element(By.ID, "page").text.strip() == f"page {page + 1} of 4"
            seen += visible
            if page < 3:
                browser.find_element(By.ID, "next").click()
        assert len(set(seen)) == 16 and not browser.find_element(By.ID, "next").is_enabled()
        Select(browser.find_element(By.ID, "f-teacher")).select_by_visible_text("wrong")
        assert browser.find_element(By.ID, "page").text.strip().startswith("page 1 of")
    finally:
        browser.quit()


def test_tables_have_captions_and_rationale_sets_their_own_names(tiny_run: Path, tmp_path: Path) -> None:
    page = build_report(ReportConfig(run_dir=str(tiny_run), output=str(tmp_path / "r.html"))).read_text()
    assert page.count("<table>") == page.count("<table><caption>")
    titles = re.findall(r"<div><b>([^<]+)</b>", page)
    assert len(titles) == len(set(titles)) == 3 and all(" · teacher " in t for t in titles)
    assert "Lift: the word's share" in html.unescape(page)


def test_a_one_method_run_has_no_agreement_plot(tmp_path: Path, t5_dir: Path) -> None:
    for split in ("train", "test"):
        assert main(["extract", "--task", "keywords", "--teacher", str(t5_dir), "--output", str(tmp_path / split),
                     "--split", split, "--limit", "8", "--top-k", "2", "--max-new-tokens", "3", "--device", "cpu"]) == 0
    page = build_report(ReportConfig(run_dir=str(tmp_path))).read_text()
    assert "Method agreement" not in page


def test_the_report_says_in_words_what_the_seeds_allow(tmp_path: Path) -> None:
    """On the published verdict grid, the report lists results.md's claims, the claim in bold, above the table."""
    from tokendistill.results import render_results

    grid = Path(__file__).resolve().parents[1] / "docs" / "results" / "decisive-esnli-cpu"
    page = build_report(ReportConfig(run_dir=str(grid), output=str(tmp_path / "report.html"))).read_text("utf-8")
    written = render_results(grid)["results.md"].split("What the seeds allow")[1].split("\n\n")[1].splitlines()
    section = page.split("<h3 id='verdict'>")[1]
    assert len(written) >= 4
    for line in written:
        if line.startswith("- **"):
            claim, _, rest = line[len("- **"):].partition("**")
            assert f"<li><b>{claim}</b>{html.escape(rest)}</li>" in section
        else:
            assert f"<li>{html.escape(line[2:])}</li>" in section
    assert section.index("<ul class='claims'>") < section.index("<table")
