"""Basic accessibility checks of a page in the browser, for every dashboard page's tests.

``problems(page)`` lists what is wrong, in words (an empty list: nothing found):

- ``<html lang>`` is set;
- exactly one ``<h1>``; headings do not skip a level going down (an ``<h2>`` then an
  ``<h4>``); the first heading is the ``<h1>``;
- every form control a person fills in or picks (``input`` but hidden, submit, button,
  reset and image; ``select``; ``textarea``) has a name: a ``<label for>`` naming its id, a
  ``<label>`` around it, ``aria-label`` or ``aria-labelledby``;
- every button has a text (or ``aria-label``), every link a text;
- every ``<img>`` has an ``alt`` attribute (empty for decoration);
- ids are unique (a ``<label for>`` pointing at a repeated id names the wrong control).

``focus_is_visible(page)`` says whether the focused element draws a focus indicator (an
outline or a box shadow), which is what a keyboard user follows.
"""

from __future__ import annotations

from playwright.sync_api import Page

_CHECKS = """
() => {
  const problems = [];
  const describe = (el) => {
    let d = el.tagName.toLowerCase();
    if (el.id) d += '#' + el.id;
    if (el.getAttribute('name')) d += '[name=' + el.getAttribute('name') + ']';
    if (el.getAttribute('type')) d += '[type=' + el.getAttribute('type') + ']';
    return d;
  };
  const lang = document.documentElement.getAttribute('lang');
  if (!lang || !lang.trim()) problems.push('<html> has no lang attribute');
  const h1s = document.querySelectorAll('h1');
  if (h1s.length !== 1) problems.push('expected exactly one <h1>, found ' + h1s.length);
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')];
  let previous = 0;
  for (const h of headings) {
    const level = Number(h.tagName[1]);
    if (previous === 0 && level !== 1) {
      problems.push('the first heading is <' + h.tagName.toLowerCase() + '>, not <h1>');
    } else if (level > previous + 1 && previous !== 0) {
      problems.push('heading level skipped: <h' + previous + '> then <h' + level + '> "'
                    + h.textContent.trim().slice(0, 60) + '"');
    }
    previous = level;
  }
  const unnamed = new Set(['hidden', 'submit', 'button', 'reset', 'image']);
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (el.tagName === 'INPUT' && unnamed.has(type)) continue;
    const byFor = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
    const wrapped = el.closest('label');
    const aria = (el.getAttribute('aria-label') || '').trim()
                 || el.getAttribute('aria-labelledby');
    if (!byFor && !wrapped && !aria) {
      problems.push('form control without a label: ' + describe(el));
    }
  }
  for (const el of document.querySelectorAll('button, input[type=submit], input[type=button]')) {
    const text = (el.textContent || el.value || el.getAttribute('aria-label') || '').trim();
    if (!text) problems.push('button without a text: ' + describe(el));
  }
  for (const el of document.querySelectorAll('a[href]')) {
    const text = (el.textContent || el.getAttribute('aria-label') || '').trim();
    const img = el.querySelector('img[alt]:not([alt=""])');
    if (!text && !img) problems.push('link without a text: ' + el.getAttribute('href'));
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) {
      problems.push('image without alt: ' + (img.getAttribute('src') || ''));
    }
  }
  const seen = new Map();
  for (const el of document.querySelectorAll('[id]')) seen.set(el.id, (seen.get(el.id) || 0) + 1);
  for (const [id, n] of seen) if (n > 1) problems.push('id used ' + n + ' times: ' + id);
  return problems;
}
"""

_FOCUS_VISIBLE = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return false;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== 'none';
  return Boolean(outline || shadow);
}
"""


def problems(page: Page) -> list[str]:
    """What the checks above find wrong with the page as it is now."""
    return list(page.evaluate(_CHECKS))


def assert_accessible(page: Page) -> None:
    """Fail naming the page and every problem found."""
    found = problems(page)
    assert not found, f"accessibility problems on {page.url}:\n  " + "\n  ".join(found)


def focus_is_visible(page: Page) -> bool:
    """Whether the focused element draws an outline or a box shadow."""
    return bool(page.evaluate(_FOCUS_VISIBLE))


def focused(page: Page) -> str:
    """The focused element as ``tag#id`` or ``tag:text`` (a button or link)."""
    return str(page.evaluate(
        "() => { const el = document.activeElement; if (!el) return '';"
        " const tag = el.tagName.toLowerCase();"
        " return el.id ? tag + '#' + el.id : tag + ':' + (el.textContent || '').trim(); }"))
