from services.common.cache import TTLCache


class Ticks:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_value_is_reused_until_it_expires_then_loaded_again():
    ticks, loads = Ticks(), []
    cache = TTLCache(5, monotonic=ticks)

    def load():
        loads.append(ticks.now)
        return len(loads)

    assert cache.get("m_1", load) == 1
    ticks.now += 4.5
    assert cache.get("m_1", load) == 1
    ticks.now += 1.0
    assert cache.get("m_1", load) == 2
    assert loads == [100.0, 105.5]


def test_forget_and_separate_keys():
    cache = TTLCache(60)
    values = iter(range(10))
    assert cache.get("a", lambda: next(values)) == 0
    assert cache.get("b", lambda: next(values)) == 1
    cache.forget("a")
    assert cache.get("a", lambda: next(values)) == 2
    assert cache.get("b", lambda: next(values)) == 1


def test_zero_seconds_turns_caching_off_and_errors_are_not_cached():
    off = TTLCache(0)
    values = iter(range(10))
    assert [off.get("a", lambda: next(values)) for _ in range(3)] == [0, 1, 2]

    cache, calls = TTLCache(60), []

    def failing():
        calls.append(1)
        raise RuntimeError("signup is away")

    for _ in range(2):
        try:
            cache.get("a", failing)
        except RuntimeError:
            pass
    assert len(calls) == 2
    assert cache.get("a", lambda: "back") == "back"


def test_the_cache_stays_bounded():
    cache = TTLCache(60, max_entries=3)
    for key in range(10):
        cache.get(key, lambda key=key: key)
    assert len(cache._entries) <= 3


def test_peek_and_put():
    ticks = Ticks()
    cache = TTLCache(10, monotonic=ticks)
    assert cache.peek("ct_1") is None
    cache.put("ct_1", "m_1")
    assert cache.peek("ct_1") == "m_1"
    ticks.now += 11
    assert cache.peek("ct_1") is None
    off = TTLCache(0)
    off.put("ct_1", "m_1")
    assert off.peek("ct_1") is None
