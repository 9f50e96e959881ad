# Clinic booking service. `make run` to try it, `make test` before every push.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench bench-availability bench-booking bench-notifications \
	bench-feeds bench-series bench-load bench-requests bench-waitlist bench-desk bench-instructions \
	bench-paired clean \
	translations-extract translations-update translations-compile

$(STAMP): pyproject.toml package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# The back office's calendar and charts, and the browser tests' axe-core, from the lock
	# file; the libraries are served from static/vendor/ (git-ignored, made here).
	if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; fi
	mkdir -p static/vendor
	cp node_modules/@event-calendar/build/dist/event-calendar.min.js \
	   node_modules/@event-calendar/build/dist/event-calendar.min.css \
	   node_modules/chart.js/dist/chart.umd.min.js static/vendor/
	touch $(STAMP)

install: $(STAMP) translations-compile

# The patient's languages (docs/languages.md): the .po catalogs are kept in git, the compiled
# .mo files are built here.
TRANSLATIONS := booking/translations
translations-extract: $(STAMP)
	$(BIN)/pybabel extract --mapping-file babel.cfg --no-location --sort-output \
		--project "Clinic booking" --msgid-bugs-address "" --keywords _l \
		--output-file $(TRANSLATIONS)/messages.pot .

translations-update: translations-extract
	$(BIN)/pybabel update --input-file $(TRANSLATIONS)/messages.pot \
		--output-dir $(TRANSLATIONS) --no-fuzzy-matching --ignore-obsolete

translations-compile: $(STAMP)
	$(BIN)/pybabel compile --directory $(TRANSLATIONS) --statistics

run: install
	$(FLASK) db upgrade
	$(FLASK) seed-demo --if-empty
	# With no SMTP_HOST, mail is written to instance/outbox/ (the back office lists it).
	BOOKING_SCHEDULER=$${BOOKING_SCHEDULER:-on} \
	MAIL_DELIVERY=$${MAIL_DELIVERY:-$$(test -n "$$SMTP_HOST" && echo smtp || echo files)} \
	$(FLASK) run --host 127.0.0.1 --port 5000

# The whole suite, on SQLite and on PostgreSQL. With DATABASE_URL unset, a throwaway
# PostgreSQL server is started for the run; set it to use a server of your own.
test: install
	$(BIN)/ruff check .
	$(BIN)/python tests/postgres_server.py -- $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: bench-availability bench-requests bench-booking bench-notifications bench-feeds bench-series \
	bench-waitlist bench-desk bench-load

bench-availability: install
	$(BIN)/python bench/availability.py

# Requests around the engine, gunicorn on SQLite and PostgreSQL, beside /healthz.
bench-requests: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/request_costs.py

# Instructions per request in the app's process, counted by valgrind: changes of a few percent
# show even when the machine's speed wanders (bench/instructions.py).
bench-instructions: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/instructions.py

# Two gunicorn configurations loaded at once, CPU per request of each: changes of a few percent
# in what gunicorn costs, which runs one after the other cannot show (bench/paired.py).
# PAIRED_ARGS='--b=--preload' names the second configuration's arguments.
bench-paired: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/paired.py $(PAIRED_ARGS)

bench-booking: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/booking.py

bench-notifications: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/notifications.py

bench-waitlist: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/waitlist.py

bench-feeds: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/feeds.py

# A 24-visit weekly series previewed and booked in-process, on SQLite and PostgreSQL.
bench-series: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/series.py

# The board's JSON and the dashboard, on SQLite and PostgreSQL.
bench-desk: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/desk.py

# The whole service under load, with two schedulers; BENCH_LOAD_ARGS="--seconds 20" shortens it.
bench-load: install
	$(BIN)/python tests/postgres_server.py -- $(BIN)/python bench/load.py $(BENCH_LOAD_ARGS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache test-output
