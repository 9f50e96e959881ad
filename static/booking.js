/* The booking pages, better with JavaScript: everything here is optional, the pages work
   without it (plain links and forms). Loaded with `defer`; no inline scripts (see the CSP).

   - The week of free times changes (other week, other therapist) without a page reload.
   - A day chip opens its day in place (on a phone, the one day shown; else it scrolls to it).
   - The date of birth hint says how to type a date where the browser has no date box.
   - A note when the browser's time zone is not the clinic's.
   - The child's fields show only when the visit is for a child.
   - A form is sent once, and an error summary takes the focus. */
(function () {
  "use strict";

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  function noteZones(root) {
    var zone = browserZone();
    root.querySelectorAll("[data-clinic-zone]").forEach(function (element) {
      var note = element.querySelector(".zone-note");
      if (!note || !zone || zone === element.getAttribute("data-clinic-zone")) {
        return;
      }
      // The page gives the words in its language, with {zone} where the zone goes.
      var words = note.getAttribute("data-words") ||
        "Your device is set to {zone}: the times here are the clinic's, not your local times.";
      note.textContent = words.replace("{zone}", zone.replace(/_/g, " "));
      note.hidden = false;
    });
  }

  // --- the week of free times ---------------------------------------------------------------

  function announce(text) {
    var status = document.querySelector("[data-times-status]");
    if (status) {
      status.textContent = text;
    }
  }

  function showTimes(url, remember, moveFocus) {
    var times = document.getElementById("times");
    if (!times || !window.fetch || !window.DOMParser) {
      window.location.href = url;
      return;
    }
    times.setAttribute("aria-busy", "true");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("times");
        if (!fresh) {
          throw new Error("no times in the answer");
        }
        times.replaceWith(fresh);
        noteZones(fresh);
        if (remember) {
          window.history.pushState({ times: true }, "", url);
        }
        var heading = fresh.querySelector("#times-heading");
        var status = document.querySelector("[data-times-status]");
        var showing = (status && status.getAttribute("data-words")) || "Showing free times for {week}";
        announce(showing.replace("{week}", heading ? heading.textContent : ""));
        // A replaced link loses the focus: give it to the new week's heading. A changed
        // select keeps it (changing a setting must not move the patient elsewhere).
        if (heading && moveFocus) {
          heading.focus();
        }
      })
      .catch(function () {
        window.location.href = url;  // the plain page always works
      });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-week-link]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
      return;
    }
    event.preventDefault();
    showTimes(link.href, true, true);
  });

  // A day chip: the same day its `?day=` link would open, without loading the page again.
  document.addEventListener("click", function (event) {
    var chip = event.target.closest && event.target.closest("a[data-day-link]");
    if (!chip || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
      return;
    }
    var day = chip.getAttribute("data-day-link");
    var times = chip.closest("#times");
    var section = times && times.querySelector('.day-times[data-day="' + day + '"]');
    if (!section) {
      return;  // the link still works
    }
    event.preventDefault();
    times.querySelectorAll(".day-times.is-open").forEach(function (open) {
      open.classList.remove("is-open");
    });
    section.classList.add("is-open");
    times.querySelectorAll("a[data-day-link]").forEach(function (link) {
      if (link === chip) {
        link.setAttribute("aria-current", "true");
      } else {
        link.removeAttribute("aria-current");
      }
    });
    window.history.replaceState(window.history.state, "", chip.href.split("#")[0]);
    section.focus();  // on a wide screen this is the jump the link's #fragment makes
  });

  function timesFormUrl(form) {
    var query = new URLSearchParams(new FormData(form)).toString();
    return form.action + (query ? "?" + query : "");
  }

  document.querySelectorAll("form[data-times-form]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      showTimes(timesFormUrl(form), true, true);
    });
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () {
        showTimes(timesFormUrl(form), true, false);
      });
    });
  });

  window.addEventListener("popstate", function () {
    if (document.getElementById("times")) {
      showTimes(window.location.href, false, false);
    }
  });

  // --- who the visit is for -----------------------------------------------------------------

  var visitFor = document.querySelector("[data-visit-for]");
  var childFields = document.getElementById("child-fields");
  if (visitFor && childFields) {
    var showChildFields = function () {
      var chosen = visitFor.querySelector("input:checked");
      childFields.hidden = !(chosen && chosen.value === "child");
    };
    visitFor.addEventListener("change", showChildFields);
    showChildFields();
    var hint = document.getElementById("child-fields-hint");
    if (hint) {
      hint.textContent = hint.getAttribute("data-words") ||
        "Your child is the patient; you are the contact for the visit.";
    }
  }

  // Without a date box the browser shows a plain text field, read as year-month-day.
  document.querySelectorAll('input[name="child_date_of_birth"]').forEach(function (input) {
    var hint = document.getElementById(input.id + "-hint");
    if (hint && input.type !== "date") {
      hint.textContent = input.getAttribute("data-typed-hint") ||
        "Type it as year-month-day, for example 2019-04-23.";
    }
  });

  // --- sending forms ------------------------------------------------------------------------

  document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
    var sent = false;
    form.addEventListener("submit", function (event) {
      if (sent) {
        event.preventDefault();
        return;
      }
      sent = true;
      form.setAttribute("aria-busy", "true");
    });
  });

  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
  }
  // The weekly visits' preview is below the form: take the reader to it.
  var preview = document.getElementById("series-preview-heading");
  if (preview && !summary) {
    preview.focus();
  }

  noteZones(document);
})();
