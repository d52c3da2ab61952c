"""``portico``: the ops command line.

    portico migrate [SERVICE ...]        apply each service's Alembic migrations
    portico declare                      declare exchanges and queues on the broker
    portico merchant create --slug acme --name "Acme GmbH" [--country DE] [--language de]
    portico merchant rotate-key --slug acme          a new secret API key (the old one stops)
    portico merchant rotate-public-key --slug acme   a new public key (pk_… page URLs change)
    portico catalog import FILE.yaml|FILE.json --slug acme   create/update the catalog
    portico seed-demo                    the demo merchant and plan (idempotent)
    portico dead-letters list|replay     inspect or re-queue dead-lettered messages
    portico amqp-user create|delete --merchant m_…   a RabbitMQ user for the merchant's events
    portico portal-link [--slug demo]    a fresh portal link for the merchant's newest contract
    portico run                          everything, locally (what ``make run`` does)
"""
from services.common import green  # noqa: F401  (first: eventlet monkey-patching)

# isort: split
import argparse
import json
import sys

from services.common import config as configuration
from services.common import migrate, topology
from services.common.runner import SERVICES, config_path

DEMO_SLUG = "demo"
# The local demo merchant's key, so the README's curl examples work as pasted. It exists only
# in a database seeded by ``portico seed-demo`` (``make run``), never in a real deployment.
DEMO_SECRET_KEY = "sk_demo_local_only_0123456789abcdefghijklmnopqrstuv"  # noqa: S105


def service_config(name: str) -> dict:
    return configuration.load(config_path(name))


def amqp_uri() -> str:
    return service_config("signup")["AMQP_URI"]


def rpc_proxy(timeout: float = 30):
    from nameko.standalone.rpc import ClusterRpcProxy
    return ClusterRpcProxy({"AMQP_URI": amqp_uri()}, timeout=timeout)


def cmd_migrate(args) -> int:
    for name in args.services or SERVICES:
        url = service_config(name)["DB_URL"]
        migrate.upgrade(name, url)
        print(f"migrated {name}")
    return 0


def cmd_declare(args) -> int:
    queues = topology.declare_all(amqp_uri())
    print(f"declared {len(queues)} queues")
    return 0


def cmd_merchant(args) -> int:
    from services.common.errors import PorticoError
    with rpc_proxy() as rpc:
        try:
            if args.action == "create":
                result = rpc.signup.create_merchant(args.slug, args.name, args.country,
                                                    args.language)
            elif args.action == "rotate-public-key":
                merchant = rpc.signup.find_merchant(args.slug)
                result = {"merchant_id": merchant["id"],
                          "public_key": rpc.signup.rotate_public_key(merchant["id"])}
            else:
                merchant = rpc.signup.find_merchant(args.slug)
                result = {"merchant_id": merchant["id"],
                          "secret_key": rpc.signup.rotate_secret_key(merchant["id"])}
        except PorticoError as exc:
            print(f"portico: {exc.message}: {json.dumps(exc.fields)}", file=sys.stderr)
            return 1
    print(json.dumps(result, indent=2))
    return 0


def read_catalog_file(path: str):
    """A catalog document from YAML (``.yaml``/``.yml``) or JSON (anything else)."""
    import yaml
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith((".yaml", ".yml")):
        # dates and times as ISO text, as the API takes them
        return json.loads(json.dumps(yaml.safe_load(text), default=lambda v: v.isoformat()))
    return json.loads(text)


def cmd_catalog(args) -> int:
    """``portico catalog import FILE --slug acme``: upsert by ref (coupons by code), all or
    nothing; prints what was created/updated and the ids by ref, or every error by path."""
    from services.common.errors import PorticoError
    try:
        document = read_catalog_file(args.file)
    except (OSError, ValueError) as exc:
        print(f"portico: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    with rpc_proxy() as rpc:
        try:
            merchant = rpc.signup.find_merchant(args.slug)
            result = rpc.signup.import_catalog(merchant["id"], document)
        except PorticoError as exc:
            print(f"portico: {exc.message}", file=sys.stderr)
            for name, errors in sorted(exc.fields.items()):
                for error in errors:
                    print(f"  {name}: {error.get('message')}", file=sys.stderr)
            return 1
    print(json.dumps(result, indent=2))
    return 0


def seed_demo(rpc) -> dict:
    """Create the demo merchant with one plan variant unless it exists; return its facts."""
    from services.common.errors import NotFound
    try:
        merchant = rpc.signup.find_merchant(DEMO_SLUG)
        rpc.signup.rotate_secret_key(merchant["id"], DEMO_SECRET_KEY)
    except NotFound:
        created = rpc.signup.create_merchant(DEMO_SLUG, "Portico Demo GmbH", "DE", "en",
                                             DEMO_SECRET_KEY)
        merchant = {"id": created["merchant_id"]}
    variants = rpc.signup.list_plan_variants(merchant["id"])
    if not variants:
        plan = rpc.signup.create_plan(merchant["id"], {"name": {"en": "Pro", "de": "Pro",
                                                                "fr": "Pro"}})
        variants = [rpc.signup.create_plan_variant(merchant["id"], {
            "plan_id": plan["id"], "name": {"en": "Pro monthly", "de": "Pro monatlich",
                                            "fr": "Pro mensuel"},
            "currency": "EUR", "recurring_fee": "29.00", "setup_fee": "9.90",
            "billing_period_months": 1, "trial_days": 0,
            "notice_period": {"value": 1, "unit": "month"}})]
    return {"merchant_id": merchant["id"], "slug": DEMO_SLUG, "secret_key": DEMO_SECRET_KEY,
            "plan_variant_id": variants[0]["id"]}


def demo_portal_link(rpc, demo: dict, base_url: str) -> str | None:
    """A fresh portal link for the demo merchant's newest contract, once tokens can mint."""
    try:
        contract_id = rpc.portal.latest_contract_id(demo["merchant_id"])
        if not contract_id:
            return None
        minted = rpc.tokens.mint_token(demo["merchant_id"], contract_id, 60 * 24)
    except Exception:
        return None
    return f"{base_url}/portal?token={minted['token']}"


def cmd_seed_demo(args) -> int:
    with rpc_proxy() as rpc:
        print(json.dumps(seed_demo(rpc), indent=2))
    return 0


def cmd_dead_letters(args) -> int:
    from ops import dead_letters
    if args.action == "list":
        for entry in dead_letters.peek(amqp_uri(), args.limit):
            print(json.dumps(entry))
        return 0
    moved = dead_letters.replay(amqp_uri(), args.limit)
    print(f"re-queued {moved} message(s)")
    return 0


def cmd_portal_link(args) -> int:
    from services.common.errors import NotFound
    base_url = service_config("gateway")["PUBLIC_URL"].rstrip("/")
    with rpc_proxy() as rpc:
        try:
            merchant = rpc.signup.find_merchant(args.slug)
        except NotFound:
            print(f"portico: no merchant {args.slug!r} (run `make run` first)", file=sys.stderr)
            return 1
        link = demo_portal_link(rpc, {"merchant_id": merchant["id"]}, base_url)
    if link is None:
        print(f"portico: {args.slug!r} has no contract yet: sign up on its signup page first",
              file=sys.stderr)
        return 1
    print(link)
    return 0


def cmd_amqp_user(args) -> int:
    """A RabbitMQ user that may only read ``<merchant>.*`` from ``portico.merchant-events``."""
    from ops import amqp_users
    api = amqp_users.ManagementApi.from_environment()
    try:
        if args.action == "delete":
            amqp_users.delete_user(api, args.merchant)
            print(f"deleted {amqp_users.username(args.merchant)}")
            return 0
        settings = amqp_users.create_user(api, args.merchant, amqp_uri=amqp_uri(),
                                          vhost=args.vhost, amqp_host=args.amqp_host)
    except amqp_users.AmqpUserError as exc:
        print(f"portico: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(settings, indent=2))
    return 0


def cmd_run(args) -> int:
    from ops import local
    return local.run(port=args.port)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="portico", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("migrate")
    p.add_argument("services", nargs="*", choices=[[], *SERVICES], default=[])
    p.set_defaults(func=cmd_migrate)
    sub.add_parser("declare").set_defaults(func=cmd_declare)
    p = sub.add_parser("merchant")
    p.add_argument("action", choices=["create", "rotate-key", "rotate-public-key"])
    p.add_argument("--slug", required=True)
    p.add_argument("--name", default="")
    p.add_argument("--country", default="DE")
    p.add_argument("--language", default="en", choices=["en", "de", "fr"])
    p.set_defaults(func=cmd_merchant)
    p = sub.add_parser("catalog", help="import a catalog file (YAML or JSON)")
    p.add_argument("action", choices=["import"])
    p.add_argument("file")
    p.add_argument("--slug", required=True)
    p.set_defaults(func=cmd_catalog)
    sub.add_parser("seed-demo").set_defaults(func=cmd_seed_demo)
    p = sub.add_parser("dead-letters")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_dead_letters)
    p = sub.add_parser("amqp-user", help="a RabbitMQ user for a merchant's event consumer")
    p.add_argument("action", choices=["create", "delete"])
    p.add_argument("--merchant", required=True, help="the merchant id (m_…)")
    p.add_argument("--vhost", default=None, help="default: the vhost of AMQP_URI")
    p.add_argument("--amqp-host", default=None, help="host merchants connect to "
                   "(default: the host of AMQP_URI)")
    p.set_defaults(func=cmd_amqp_user)
    p = sub.add_parser("portal-link")
    p.add_argument("--slug", default=DEMO_SLUG)
    p.set_defaults(func=cmd_portal_link)
    p = sub.add_parser("run")
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_run)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except configuration.ConfigError as exc:
        configuration.fail("portico", f"config error: {exc}")
    except (ConnectionError, OSError) as exc:
        configuration.fail("portico", f"cannot reach the broker or database: {exc}", 1)
    return 1


if __name__ == "__main__":
    sys.exit(main())
