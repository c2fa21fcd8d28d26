"""The pages in Korean, in real headless Chromium: Korean text is drawn with a Korean font,
not as boxes (scripts/setup.sh --test installs Debian's fonts-noto-cjk)."""

from __future__ import annotations

import os

from browser import (
    BROWSER_TESTS,
    open_camera,
    open_monitor,
    tile_is_live,
)

pytestmark = BROWSER_TESTS

# Draws strings in an element's own font and returns each one's pixels (alpha, as text), so
# glyphs can be compared: a missing glyph is drawn as the same box ("tofu") whatever it is.
GLYPH_PIXELS = """([selector, texts]) => {
  const font = getComputedStyle(document.querySelector(selector)).fontFamily;
  const canvas = document.createElement('canvas');
  canvas.width = 72;
  canvas.height = 72;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.font = `48px ${font}`;
  ctx.textBaseline = 'top';
  return texts.map((text) => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillText(text, 8, 8);
    const alpha = ctx.getImageData(0, 0, canvas.width, canvas.height).data
      .filter((_, index) => index % 4 === 3);
    return { text, width: ctx.measureText(text).width, ink: alpha.filter((a) => a > 0).length,
             pixels: alpha.join(',') };
  });
}"""

HANGUL = ["카", "메", "라", "연", "결"]
MISSING = ["\U0010fffc", "\U0010fffd"]  # private use: no font has them, always a box


async def test_camera_page_in_korean_draws_korean_glyphs(server, browser, artifacts_dir):
    context, page = await open_camera(browser, server.url, "korean_cam", locale="ko-KR")
    try:
        assert await page.evaluate("document.documentElement.lang") == "ko"
        assert await page.locator("h1").inner_text() == "KOMI 카메라"
        await page.wait_for_function(
            "document.querySelector('#state').textContent === '연결됨'", timeout=15000
        )
        await page.select_option("#exercise", "squat")
        await page.locator("#analysis").wait_for(state="visible", timeout=15000)
        assert "스쿼트" in await page.locator("#analysis").inner_text()
        glyphs = await page.evaluate(GLYPH_PIXELS, ["h1", HANGUL + MISSING])
        hangul, missing = glyphs[: len(HANGUL)], glyphs[len(HANGUL) :]
        # the method sees boxes: two different missing characters draw the same box
        assert missing[0]["pixels"] == missing[1]["pixels"]
        for glyph in hangul:
            assert glyph["ink"] > 100, f"{glyph['text']} draws nothing"
            assert glyph["pixels"] != missing[0]["pixels"], f"{glyph['text']} is a box"
        assert len({glyph["pixels"] for glyph in hangul}) == len(HANGUL), "syllables look alike"
        await page.screenshot(path=os.path.join(artifacts_dir, "camera_page_ko.png"))
        # the monitor in Korean: the tile's words, and the exercise the camera chose
        monitor_context, monitor = await open_monitor(browser, server.url, locale="ko-KR")
        try:
            await tile_is_live(monitor, "korean_cam")
            await monitor.wait_for_function(
                """() => document.querySelector('.tile .exercise').value === 'squat'
                         && /영상 대기 \\d+ ms/.test(document.querySelector('.tile .held').textContent)""",
                timeout=15000,
            )
            picker = monitor.locator(".tile select.exercise")
            assert await picker.evaluate("s => s.selectedOptions[0].textContent") == "스쿼트"
            assert (await monitor.locator(".tile .latency-stat").inner_text()).startswith("지연 ")
            await monitor.screenshot(path=os.path.join(artifacts_dir, "monitor_page_ko.png"))
        finally:
            await monitor_context.close()
    finally:
        await context.close()
