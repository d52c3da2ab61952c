from services.common.alembic_env import run
from services.portal.models import Base

run(Base.metadata)
