"""The clinic's booking service: create_app() builds it from configuration."""

from datetime import timedelta

from flask import Flask, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from config import INSTANCE_DIR, PROJECT_ROOT, load_config


def create_app(config=None) -> Flask:
    from booking.web.clinic_app import ClinicApp

    app = ClinicApp(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_mapping(load_config(config))
    from booking.web import log_redaction

    log_redaction.install()  # before anything logs a manage or feed path
    app.json.sort_keys = False
    from booking.web.cookie_session import CookieSession

    app.session_interface = CookieSession()
    if app.config["TRUSTED_PROXIES"]:
        # Behind nginx: the client's address (rate limits key on it) and scheme (HSTS,
        # secure cookies) come from the X-Forwarded-* headers of that many proxies, no more.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from booking import database
    from booking.extensions import babel, csrf, db, limiter, login, migrate

    url = database.normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = database.engine_options(
        url, app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
    )
    app.config["SQLALCHEMY_BINDS"] = database.engine_binds(
        url, app.config["SQLALCHEMY_ENGINE_OPTIONS"], app.config.get("SQLALCHEMY_BINDS", {})
    )
    if url.startswith("sqlite:///"):
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    database.init_app(app)
    from booking.web import record_ids, requests

    requests.init_app(app)
    record_ids.init_app(app)
    migrate.init_app(
        app, db, directory=str(PROJECT_ROOT / "booking" / "migrations"), render_as_batch=True
    )
    csrf.init_app(app)
    from booking.patients.languages import page_language

    babel.init_app(app, locale_selector=page_language)
    login.init_app(app)
    from booking.desk import desk, load_staff_user

    login.user_loader(load_staff_user)
    login.login_view = "desk.sign_in.login"
    login.login_message = "Please log in to the back office."
    limiter.init_app(app)

    from booking import models  # noqa: F401  (the tables must be known to Alembic)
    from booking.api import api
    from booking.feeds import feeds
    from booking.public import public
    from booking.web.security_headers import add_security_headers

    app.register_blueprint(public)
    app.register_blueprint(desk, url_prefix="/desk")
    app.register_blueprint(api, url_prefix="/api/v1")
    csrf.exempt(api)  # the JSON API takes no cookies: a manage token or nothing
    app.register_blueprint(feeds)
    csrf.exempt(feeds)  # GET only, by secret token
    app.after_request(add_security_headers)
    from booking.web.nul_characters import refuse_nul_characters

    app.before_request(refuse_nul_characters)

    @app.get("/healthz")
    def healthz():
        # Reading the heartbeat is the database check too. A late dispatcher is shown, not a
        # 503: the web can still book; reminders wait in the outbox until a dispatcher runs.
        from booking.database import read_outside_a_transaction
        from booking.models import dispatcher_state, last_dispatcher_run, utc_now

        try:
            read_outside_a_transaction()  # connecting is part of the check
            last_run = last_dispatcher_run()
        except Exception:
            db.session.rollback()
            answer = jsonify(database="unavailable")
            answer.status_code = 503
        else:
            late_after = timedelta(seconds=app.config["DISPATCHER_LATE_SECONDS"])
            answer = jsonify(
                database="ok",
                dispatcher=dispatcher_state(last_run, utc_now(), late_after),
                dispatcher_last_run=last_run.isoformat() if last_run else None,
            )
        answer.headers["Cache-Control"] = "no-store"
        return answer

    from booking.cli import register_commands

    register_commands(app)

    from booking.notifications.periodic_work import start_in_process

    start_in_process(app)  # only with BOOKING_SCHEDULER on, once per process
    return app
