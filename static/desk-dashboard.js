// The dashboard's charts, drawn by Chart.js from the tables under them (the tables stay: they
// are what a screen reader reads, and what a browser without JavaScript shows).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  if (typeof Chart === "undefined") return;
  const colours = ["#1f6f8b", "#c77d00", "#2f6b3b", "#9b2c2c", "#6b4c9a", "#4d7f7a"];
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const table = document.getElementById(`table-${canvas.dataset.chart}`);
    const labels = [...table.querySelectorAll("thead th")].slice(1).map((cell) => cell.textContent);
    const datasets = [...table.querySelectorAll("tbody tr")].map((row, index) => ({
      label: row.querySelector("th").textContent,
      data: [...row.querySelectorAll("td")].map((cell) => Number(cell.textContent)),
      backgroundColor: colours[index % colours.length],
      borderColor: colours[index % colours.length],
    }));
    new Chart(canvas, {
      type: canvas.dataset.chart === "utilisation" ? "line" : "bar",
      data: {labels, datasets},
      options: {animation: false, maintainAspectRatio: false,
                scales: {y: {beginAtZero: true}}},
    });
  }
});
