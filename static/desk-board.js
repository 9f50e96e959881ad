// The board: EventCalendar's resource time grid over the JSON the desk computes.
// Drag a visit to move it (to another time or therapist), click a free time to book there,
// or open a visit with the keyboard (Enter) for the move dialog. A refused move goes back
// where it was and the board says which rule refused it. Without this script the
// server-rendered grid below stays and works.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const element = document.getElementById("board");
  if (!element || typeof EventCalendar === "undefined") return;
  const data = element.dataset;
  const canMove = data.canMove === "yes";
  const message = document.getElementById("board-message");
  const dialog = document.getElementById("move-dialog");
  let resources = [];

  // The board is the clinic's wall clock whatever the browser's time zone: the visits come as
  // clinic times without an offset, and EventCalendar's `timeZone` (an offset, as it takes
  // them) is the clinic's offset now, so that its now line and its today are the clinic's.
  const zone = data.zone;
  const clinicClock = (moment) => Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", timeZoneName: "longOffset",
  }).formatToParts(moment).map((part) => [part.type, part.value]));
  const clinicOffset = () => {
    const named = clinicClock(new Date()).timeZoneName;  // "GMT-05:00", or "GMT" for UTC
    return named === "GMT" ? "+00:00" : named.slice(3);
  };
  const clinicNow = () => {
    const clock = clinicClock(new Date());
    return `${clock.year}-${clock.month}-${clock.day}T${clock.hour}:${clock.minute}`;
  };
  const pad = (number) => String(number).padStart(2, "0");
  const visitAddress = (id) => data.visit.replace(/\/0$/, `/${id}`);
  const dayOf = (date) => `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const timeOf = (date) => `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  // The visit's place in its series, its forms and the patient's clearance, as one line.
  const detailsOf = (props) => [props.series, props.forms,
                                props.clearance && `clearance: ${props.clearance}`]
    .filter(Boolean).join(" · ");
  const say = (text, problem) => {
    message.textContent = text;
    message.classList.toggle("error", Boolean(problem));
  };

  async function askToMove(id, start, therapist, overrideReason) {
    const answer = await fetch(data.move.replace(/\/0\/move$/, `/${id}/move`), {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": data.csrf},
      body: JSON.stringify({start, therapist, override_reason: overrideReason || ""}),
    });
    let body = {};
    try { body = await answer.json(); } catch { body = {}; }
    if (answer.ok) return {ok: true, body};
    const error = body.error || {message: `the move failed (${answer.status})`, rule: ""};
    return {ok: false, error};
  }

  const calendar = EventCalendar.create(element, {
    view: data.view === "week" ? "resourceTimeGridWeek" : "resourceTimeGridDay",
    date: data.day,
    timeZone: clinicOffset(),
    firstDay: 1,  // the clinic's week starts on Monday, as the server's week does
    headerToolbar: {start: "", center: "", end: ""},
    slotMinTime: "07:00",
    slotMaxTime: "20:00",
    slotDuration: "00:15",
    snapDuration: {minutes: Number(data.step) || 15},
    scrollTime: "08:00",
    nowIndicator: true,
    slotHeight: 40,
    locale: "en-GB",
    slotLabelFormat: {hour: "2-digit", minute: "2-digit", hour12: false},
    eventTimeFormat: {hour: "2-digit", minute: "2-digit", hour12: false},
    allDaySlot: false,
    editable: canMove,
    eventDurationEditable: false,
    eventStartEditable: canMove,
    resources: [],
    eventSources: [{
      events: async (fetchInfo) => {
        const url = new URL(data.events, window.location.href);
        url.searchParams.set("start", dayOf(fetchInfo.start));
        url.searchParams.set("end", dayOf(fetchInfo.end));
        const answer = await fetch(url, {credentials: "same-origin"});
        const body = await answer.json();
        if (JSON.stringify(body.resources) !== JSON.stringify(resources)) {
          resources = body.resources;
          calendar.setOption("resources", resources);
        }
        return body.events;
      },
    }],
    eventContent: (info) => {
      if (info.event.display === "background") return "";
      const props = info.event.extendedProps;
      const nodes = [["visit-time", info.timeText], ["visit-patient", info.event.title],
                     ["visit-service", props.service], ["visit-status", props.status],
                     ["visit-details", detailsOf(props)]]
        .filter(([, text]) => text)
        .map(([name, text]) => {
          const span = document.createElement("span");
          span.className = name;
          span.textContent = text;
          return span;
        });
      return {domNodes: nodes};
    },
    eventDidMount: (info) => {
      if (info.event.display === "background") return;
      const props = info.event.extendedProps;
      const details = detailsOf(props);
      info.el.setAttribute("title", `${info.timeText} ${info.event.title}, ${props.service}, `
        + `${props.status}${details ? `, ${details}` : ""}`);
      info.el.setAttribute("tabindex", "0");
      info.el.setAttribute("role", "button");
      info.el.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          openVisit(info.event);
        }
      });
    },
    eventClick: (info) => {
      if (info.event.display === "background") return;
      openVisit(info.event);
    },
    dateClick: (info) => {
      if (!data.book || !info.resource) return;
      // EventCalendar's dates read as clinic wall-clock times through the local getters.
      if (`${dayOf(info.date)}T${timeOf(info.date)}` < clinicNow()) {
        say("That time is past: record a walk-in from the booking form with a reason.", true);
        return;
      }
      const url = new URL(data.book, window.location.href);
      url.searchParams.set("therapist", info.resource.id);
      url.searchParams.set("day", dayOf(info.date));
      url.searchParams.set("time", timeOf(info.date));
      window.location.assign(url);
    },
    eventDrop: async (info) => {
      const therapist = (info.newResource || info.event.resourceIds && {id: info.event.resourceIds[0]}).id;
      const start = `${dayOf(info.event.start)}T${timeOf(info.event.start)}`;
      say("Moving…");
      const result = await askToMove(info.event.id, start, therapist);
      if (result.ok) {
        say(`Moved ${info.event.title} to ${timeOf(info.event.start)}; the patient is told.`);
        calendar.refetchEvents();
        return;
      }
      info.revert();
      say(`Not moved (${result.error.rule}): ${result.error.message}.`, true);
      if (result.error.overridable) offerOverride(info.event, start, therapist, result.error);
    },
  });
  // EventCalendar marks its grid as a table whose rows hold the visits, which ARIA does not
  // allow; the visits are buttons of their own, so the grid is plain layout to a screen reader.
  const plainLayout = () => {
    for (const node of element.querySelectorAll(
      "[role=table], [role=rowgroup], [role=row], [role=cell], [role=columnheader]")) {
      node.removeAttribute("role");
      node.removeAttribute("aria-colindex");
    }
  };
  calendar.setOption("eventAllUpdated", plainLayout);
  // The clocks change (daylight saving time) while the board is open: the clinic's new offset,
  // and the same day shown.
  setInterval(() => {
    const offset = clinicOffset();
    if (offset !== calendar.getOption("timeZone")) {
      calendar.setOption("timeZone", offset);
      calendar.setOption("date", data.day);
    }
  }, 60 * 1000);
  plainLayout();
  element.hidden = false;
  document.querySelector(".board-fallback").hidden = true;

  // A drop refused by a rule staff may waive (notice, window, evaluation, clearance): the
  // board asks at once whether to move anyway, with the reason the audit log keeps.
  const overrideDialog = document.getElementById("override-dialog");
  function offerOverride(event, start, therapist, error) {
    if (!overrideDialog) return;
    const form = document.getElementById("override-form");
    const reason = form.elements.override_reason;
    const problem = document.getElementById("override-problem");
    const time = start.slice(11);
    const therapistName = (resources.find((resource) => resource.id === therapist) || {}).title;
    document.getElementById("override-what").textContent = `${event.title} to ${time}`;
    document.getElementById("override-why").textContent =
      `Refused (${error.rule}): ${error.message}. Moving to ${start.slice(0, 10)} ${time}`
      + `${therapistName ? ` with ${therapistName}` : ""} waives that rule.`;
    reason.value = "";
    reason.removeAttribute("aria-invalid");
    problem.textContent = "";
    form.onsubmit = async (submitted) => {
      submitted.preventDefault();
      if (!reason.value.trim()) {
        reason.setAttribute("aria-invalid", "true");
        problem.textContent = "Give the reason for the override.";
        reason.focus();
        return;
      }
      const result = await askToMove(event.id, start, therapist, reason.value.trim());
      if (!result.ok) {
        problem.textContent = `Not moved (${result.error.rule}): ${result.error.message}.`;
        return;
      }
      overrideDialog.close();
      say(`Moved ${event.title} to ${time} with an override; the patient is told.`);
      calendar.refetchEvents();
    };
    document.getElementById("override-cancel").onclick = () => overrideDialog.close();
    overrideDialog.showModal();
    reason.focus();
  }

  function openVisit(event) {
    if (!dialog || event.editable === false) {
      window.location.assign(visitAddress(event.id));
      return;
    }
    const form = document.getElementById("move-form");
    document.getElementById("move-what").textContent =
      `${event.title}, ${event.extendedProps.service}`;
    document.getElementById("move-details").textContent = detailsOf(event.extendedProps);
    const therapists = document.getElementById("move-therapist");
    therapists.textContent = "";
    for (const resource of resources) {
      const option = new Option(resource.title, resource.id);
      option.selected = event.resourceIds.includes(resource.id);
      therapists.append(option);
    }
    form.elements.day.value = dayOf(event.start);
    form.elements.time.value = timeOf(event.start);
    form.elements.override_reason.value = "";
    document.getElementById("move-problem").textContent = "";
    document.getElementById("move-open").href = visitAddress(event.id);
    form.onsubmit = async (submitted) => {
      submitted.preventDefault();
      const result = await askToMove(event.id, `${form.elements.day.value}T${form.elements.time.value}`,
                                     therapists.value, form.elements.override_reason.value);
      if (!result.ok) {
        document.getElementById("move-problem").textContent =
          `Not moved (${result.error.rule}): ${result.error.message}.`;
        return;
      }
      dialog.close();
      say(`Moved ${event.title}; the patient is told.`);
      calendar.refetchEvents();
    };
    document.getElementById("move-cancel").onclick = () => dialog.close();
    dialog.showModal();
    therapists.focus();
  }
});
