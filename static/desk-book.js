// Booking from the desk: the patient search answers as the name, phone or email is typed.
// It asks the same page the Find button does and shows its list, so without this script
// the Find button gives the same answer.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const search = document.getElementById("q");
  const results = document.getElementById("patient-results");
  if (!search || !results) return;
  let waiting = null;
  let asked = 0;
  search.addEventListener("input", () => {
    clearTimeout(waiting);
    waiting = setTimeout(async () => {
      const number = ++asked;
      const url = new URL(search.form.action, window.location.href);
      if (search.value.trim()) url.searchParams.set("q", search.value.trim());
      const answer = await fetch(url, {credentials: "same-origin"});
      if (!answer.ok || number !== asked) return;  // a later keystroke has asked again
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const found = page.getElementById("patient-results");
      results.replaceChildren(...(found ? found.childNodes : []));
    }, 250);
  });
});
