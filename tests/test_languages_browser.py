"""The Arabic patient pages in a real browser at phone width: right to left, mirrored, nothing
overlapping or cut off, axe-core clean. Screenshots go to test-output/screenshots/
patient-ar-*.png for a person to look over the mirrored layout."""

from __future__ import annotations

import pytest

from booking.clinic import clinic_file
from booking.extensions import db
from booking.patients.manage_links import manage_token_for
from tests.conftest import local, next_weekday, screenshot
from tests.test_languages import CLINIC_IN_LANGUAGES
from tests.test_patient_browser import assert_accessible

MONDAY = next_weekday(0)
TUESDAY = next_weekday(1)


@pytest.fixture
def clinic(app):
    clinic_file.apply_clinic(clinic_file.parse_clinic_file(CLINIC_IN_LANGUAGES, "clinic.toml"))
    db.session.commit()


pytestmark = pytest.mark.usefixtures("clinic")

# Every element that shows words of its own, with its box; the check is done in the browser.
LAID_OUT_TEXT = """() => {
  const boxes = [];
  for (const element of document.querySelectorAll("body *")) {
    const style = getComputedStyle(element);
    if (style.display === "none" || style.visibility === "hidden") continue;
    if (element.closest(".visually-hidden, .skip-link, .honeypot, [hidden]")) continue;
    const ownText = [...element.childNodes].some(
      node => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
    if (!ownText) continue;
    // One box per line the element's words take (a link broken across two lines is two).
    for (const box of element.getClientRects()) {
      if (box.width === 0 || box.height === 0) continue;
      boxes.push({
        name: element.tagName + (element.className ? "." + element.className : "") + " "
              + element.textContent.trim().slice(0, 30),
        left: box.left, right: box.right, top: box.top + scrollY, bottom: box.bottom + scrollY,
        clipped: element.scrollWidth > element.clientWidth + 1 &&
                 ["hidden", "clip"].includes(style.overflowX),
        element,
      });
    }
  }
  const overlapping = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.element === b.element) continue;
      if (a.element.contains(b.element) || b.element.contains(a.element)) continue;
      const across = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const down = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (across > 1 && down > 1) overlapping.push(a.name + " / " + b.name);
    }
  }
  return {
    overlapping,
    clipped: boxes.filter(box => box.clipped).map(box => box.name),
    offScreen: boxes.filter(box => box.left < -1 || box.right > innerWidth + 1)
                    .map(box => box.name),
    pageWiderThanScreen: document.documentElement.scrollWidth > innerWidth,
  };
}"""


def assert_laid_out_cleanly(page) -> None:
    found = page.evaluate(LAID_OUT_TEXT)
    assert found == {"overlapping": [], "clipped": [], "offScreen": [],
                     "pageWiderThanScreen": False}, page.url


def test_the_arabic_pages_read_right_to_left_at_phone_width(browser, live_server, book):
    appointment = book("pt-evaluation", start=local(MONDAY, 9), language="ar")
    token = manage_token_for(appointment)
    context = browser.new_context(viewport={"width": 375, "height": 800},
                                  timezone_id="America/Detroit", locale="ar")
    page = context.new_page()
    start = local(TUESDAY, 10).isoformat().replace("+", "%2B")
    pages = {
        "services": "/?lang=ar",
        "times": f"/book/pt-evaluation?week={MONDAY.isoformat()}",
        "details": f"/book/pt-evaluation/details?start={start}",
        "manage": f"/manage/{token}",
        "reschedule": f"/manage/{token}/reschedule",
    }
    for name, path in pages.items():
        page.goto(live_server + path)
        assert page.evaluate("() => document.documentElement.dir") == "rtl", name
        assert page.evaluate("() => document.documentElement.lang") == "ar", name
        screenshot(page, f"patient-ar-{name}-375")
        assert_laid_out_cleanly(page)
        assert_accessible(page)

    # Mirrored: the clinic's name starts at the right, and the first day chip is the rightmost.
    page.goto(f"{live_server}/book/pt-evaluation?week={MONDAY.isoformat()}")
    name_box = page.locator(".clinic-name").bounding_box()
    assert name_box["x"] + name_box["width"] > 375 - 40
    chips = page.locator(".day-chip")
    assert chips.nth(0).bounding_box()["x"] > chips.nth(6).bounding_box()["x"]
    assert page.locator(".chip-weekday").first.inner_text() == "الاثنين"
    context.close()


def test_the_language_switcher_is_reached_by_keyboard_and_changes_the_page(
    browser, live_server
):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server}/")
    page.get_by_role("navigation", name="Language").get_by_role("link", name="العربية").click()
    page.wait_for_url("**/?lang=ar")
    assert page.evaluate("() => document.documentElement.dir") == "rtl"
    assert page.get_by_role("heading", level=1).inner_text() == "احجز موعدًا"
    # The choice stays as the patient goes on.
    page.get_by_role("link", name="عرض الأوقات المتاحة").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "اختر وقتًا"
    screenshot(page, "patient-ar-switched-375")
    assert_laid_out_cleanly(page)
    context.close()
