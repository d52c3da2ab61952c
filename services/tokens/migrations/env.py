from services.common.alembic_env import run
from services.tokens.models import Base

run(Base.metadata)
