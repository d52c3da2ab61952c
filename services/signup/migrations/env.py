from services.common.alembic_env import run
from services.signup.models import Base

run(Base.metadata)
