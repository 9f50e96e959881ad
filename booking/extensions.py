"""The Flask extensions, created once here and bound to an app in create_app()."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
login = LoginManager()


class RouteLimiter(Limiter):
    """Flask-Limiter, where each limit is one a view declares (`limiter.limit`,
    `limiter.shared_limit`): the view's decorator checks it.

    Flask-Limiter also checks before every request for the limits no view declares (default,
    application and blueprint limits); with none of them, that found nothing, at a third of
    what the limits cost a request (`bench/instructions.py --rate-limits on`). It is skipped
    then. With the limits off (`RATE_LIMITS=off`), the views' decorators still called the
    check, which then found no limit to apply: it is skipped too.
    """

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if not self.enabled:
            return
        manager = self.limit_manager
        if in_middleware and not (
            manager.default_limits or manager.application_limits or manager._blueprint_limits
        ):
            return
        super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)


limiter = RouteLimiter(key_func=get_remote_address)
babel = Babel()
