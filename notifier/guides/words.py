"""The words of guide search: how a query or a guide text becomes search terms. Pure.

- English: lower-cased words, lightly stemmed, stop words dropped, a few spellings owners
  use folded into the guides' (wifi, reboot, temp).
- Chinese and Japanese, written without spaces: a word from a synonym group (掉线, 断网,
  离线...) becomes the group's ``syn:<group>`` term; what is left is cut into overlapping
  character pairs (bigrams), a single character standing alone kept as itself.
- A product named in the text (门锁, 智能锁, "aircon") becomes a ``kind:<kind>`` term: it
  says which devices the question is about, not which problem, so ``search`` matches it
  against the kinds a guide applies to rather than against the guide's words.
"""

from __future__ import annotations

import re
import unicodedata

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana and CJK ideographs
_TOKEN = re.compile(rf"(?P<cjk>[{_CJK}]+)|[a-z0-9]+(?:'[a-z]+)*")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_LATIN_LETTER = re.compile(r"[a-z]")

KIND_PREFIX = "kind:"
SYNONYM_PREFIX = "syn:"

# How owners name each kind: the words select.render puts for {device_name} (a test checks
# they agree), in English (plurals too) and Chinese.
KIND_NAMES: dict[str, tuple[str, str]] = {
    "lock": ("lock", "门锁"),
    "watch": ("watch", "手表"),
    "camera": ("camera", "摄像头"),
    "air_conditioner": ("air conditioner", "空调"),
    "temperature_sensor": ("temperature sensor", "温度传感器"),
}
# ... and the other names owners use (regular expressions; 智能 "smart" goes with the name, as
# it says nothing on its own). A bare 锁 is a lock unless it is
# an air conditioner's child lock (童锁) or a watch's screen lock (锁屏); a bare "ac" is an
# air conditioner unless it is a power adapter. A bare 表 is left out: it is also 表示, 表面.
_KIND_OTHER_NAMES: dict[str, tuple[str, ...]] = {
    "lock": (r"smart ?locks?", r"deadbolts?", r"智能门锁", r"智能锁", r"(?<!童)锁(?!屏)"),
    "watch": (r"smart ?watch(?:es)?", r"智能手表", r"手环", r"腕表"),
    "camera": (r"cams?", r"webcams?", r"cctv", r"智能摄像头", r"摄像机", r"监控", r"相机"),
    "air_conditioner": (
        r"air ?cons?",
        r"air conditioning",
        r"a/c",
        r"ac(?! ?(?:adapters?|power|chargers?|plugs?|outlets?|cables?))",
        r"智能空调",
        r"冷气",
        r"室外机",
        r"外机",
        r"室内机",
        r"内机",
    ),
    "temperature_sensor": (
        r"temp(?:erature)? sensors?",
        r"thermometers?",
        r"温湿度计",
        r"温湿度传感器",
        r"温度计",
        r"温感",
    ),
}
_KIND_PATTERNS = tuple(
    (
        kind,
        re.compile(
            "|".join(
                [rf"\b{english}(?:e?s)?\b", chinese]
                + [
                    name if _CJK_CHAR.search(name) else rf"\b{name}\b"
                    for name in _KIND_OTHER_NAMES[kind]
                ]
            )
        ),
    )
    for kind, (english, chinese) in KIND_NAMES.items()
)

# Chinese words for the same thing, by group: in guides and questions alike each becomes one
# ``syn:<group>`` term, so 断网 in a question meets 掉线 and 离线 in a guide, which share no
# character pair. The longest word wins where two overlap (不更新 is "stuck", not "firmware").
# Written from the guides' problems and common owner wording; every word here must mean the
# group's thing in a support question about these products, whatever the context.
_CJK_SYNONYMS: dict[str, str] = {
    "offline": "掉线 断线 断网 离线 不在线 连不上 连接不上 连不了 联不上 上不了网 没网 没有网 "
    "断开连接 断开 失联 重连 重新连接 不稳定 不太稳定 信号弱 信号差 信号越来越弱 信号不好",
    "drain": "没电 快没电 电量低 电量不足 低电量 电量下降 掉电 耗电 费电 耗尽 用完 续航 不耐用 "
    "不经用 不够用 撑不住 撑不到 撑不过 待机短 亏电",
    "battery": "电池 电量 电池电量",
    "restart": "重启 重新启动 重新开机 反复开关 不停开关 不停地开关 关机又开机 关了又开 死机",
    "shutdown": "关机 自动关机 停机 自己停",
    "hot": "过热 发烫 烫手 很烫 滚烫 烫 太热 很热 好热 热得 特别热 非常热 发热 温度过高 "
    "温度太高 温度高 高温 温度升高 温度持续升高 升温",
    "stuck": "不变 没变 没有变 没有变化 没变化 不动 没动 不更新 没更新 没有更新 不刷新 没刷新 "
    "卡住 卡死 定住 冻住 相同 同一个 同样 一样",
    "reading": "读数 数值 数字 示数 度数",
    "new": "刚刚 刚买 新买 到手 刚拿到 新手 第一次 首次 刚装 新用户 入门 上手 开始用 开始使用",
    "install": "安装 装上 装到 装在 安在 挂在 挂到 挂墙 放在 放到 摆在 摆放",
    "pair": "配对 绑定 连手机 连接手机 配网 添加设备",
    "firmware": "固件 升级 更新 新版本 版本 刷机",
    "ticket": "工单 报修 服务请求 求助 寻求帮助 寻求了帮助 售后",
    "how_long": "多久 多长时间 多少时间",
    "warranty": "保修 质保 保修期 三包 保固",
    "repair": "维修 修理 返修 寄修 送修 换新 换货 退货 退换",
    "warning": "提醒 预警 警告 告警 警报",
    "fine": "正常 好好的 没坏 没问题 没毛病 没事",
    "fault": "故障 坏了 坏掉 出问题 有问题 毛病",
}
_SYNONYM_OF = {word: group for group, words in _CJK_SYNONYMS.items() for word in words.split()}
_SYNONYM = re.compile("|".join(sorted(_SYNONYM_OF, key=len, reverse=True)))

# English spellings folded into the guides' words, after stemming (both sides go through it).
_ENGLISH_SAME = {
    "reboot": "restart",
    "boot": "restart",
    "batt": "battery",
    "temp": "temperatur",
    "disconect": "disconnect",
    "disconnet": "disconnect",
    "overheat": "hot",
    "hotter": "hot",
    "setup": "set",
}
_WIFI = re.compile(r"\bwi[- ]?fi\b")

# Words that say nothing about which guide is meant: the usual English list (NLTK's, with
# contractions as they read without the apostrophe), and common Chinese function words as
# the bigrams they become, with how often something happens (一直, 老是: every fault recurs).
# Negations go too: "won't charge" and "charges" are about the same guide, and word matching
# cannot use the difference anyway. Single characters: function words left between synonyms.
_STOP_WORDS = """
    a about above after again against all also am an and any are aren arent as at be because
    been before being below between both but by can cannot cant could couldn couldnt did didn
    didnt do does doesn doesnt doing don dont down during each few for from further get gets got
    had hadn hadnt has hasn hasnt have haven havent having he her here hers herself him himself
    his how i if in into is isn isnt it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should shouldn shouldnt
    so some such than that the their theirs them themselves then there these they this those
    through to too under until up us very was wasn wasnt we were weren werent what when where
    which while who whom why will with won wont would wouldn wouldnt you your yours yourself
    yourselves
    什么 怎么 怎样 如何 为何 哪里 哪儿 可以 可能 我们 你们 他们 您的 我的 你的 自己 这个 那个
    这样 那样 一下 一个 已经 还是 就是 但是 因为 所以 如果 没有 非常 起来 时候 现在 应该
    在哪 哪个 为啥 咋办 怎么办 一直 老是 总是 经常 不停 不断 频繁 动不动 时不时
    了 的 吗 呢 啊 吧 呀 哦 嘛 啦 我 你 他 她 它 是 在 有 也 都 就 还 又 很 太 不 没 个 这 那
    和 与 或 把 被 给 让 要 会 能 说 一 上 下 里 到 去 来 后 前 就 得 着 过 啥 咋 怎
"""
_STOP = frozenset(_STOP_WORDS.split())
# Chinese stop words longer than a pair (动不动, 怎么办) are cut out of the text before the
# synonyms and pairs are found: a pair filter never sees them whole, and 不动 in 动不动 is
# not "stuck".
_STOP_PHRASE = re.compile("|".join(w for w in _STOP if len(w) > 2 and _CJK_CHAR.match(w)))
# Particles that end a word (的, 了, 吗...): a pair across one is two words' ends ("的温" in
# 同样的温度), so the text is cut there before pairing.
_PARTICLE = re.compile("[的了吗呢吧啊呀嘛哦啦]")


def normalise(text: str) -> str:
    """Lower case, full-width letters and digits folded to ASCII, curly apostrophes straight,
    Wi-Fi written one way."""
    folded = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    return _WIFI.sub("wifi", folded)


def terms(text: str) -> list[str]:
    """Search terms of a text: stemmed English words without stop words; CJK synonym groups,
    then bigrams of the rest."""
    found: list[str] = []
    for match in _TOKEN.finditer(normalise(text)):
        run = match.group()
        if match.group("cjk"):
            found.extend(_cjk_terms(run))
        else:
            word = run.removesuffix("'s").replace("'", "")
            if word not in _STOP and stem(word) not in _STOP:
                stemmed = stem(word)
                found.append(_ENGLISH_SAME.get(stemmed, stemmed))
    return found


def _cjk_terms(run: str) -> list[str]:
    found: list[str] = []
    pieces: list[str] = []
    for part in _STOP_PHRASE.split(run):
        start = 0
        for synonym in _SYNONYM.finditer(part):
            found.append(SYNONYM_PREFIX + _SYNONYM_OF[synonym.group()])
            pieces.append(part[start : synonym.start()])
            start = synonym.end()
        pieces.append(part[start:])
    for piece in (part for between in pieces for part in _PARTICLE.split(between)):
        if len(piece) == 1 and piece not in _STOP:
            found.append(piece)
        else:
            # No spaces between Chinese words: overlapping pairs of characters stand in for
            # words (手表电池 -> 手表, 表电, 电池).
            pairs = (piece[i : i + 2] for i in range(len(piece) - 1))
            found.extend(pair for pair in pairs if pair not in _STOP)
    return found


def query_terms(query: str) -> list[str]:
    """A query's terms: ``kind:<kind>`` for each product it names, the rest as ``terms``."""
    text = normalise(query)
    kinds: list[str] = []
    for kind, pattern in _KIND_PATTERNS:
        text, named = pattern.subn(" ", text)  # a space: the words around it stay apart
        if named:
            kinds.append(KIND_PREFIX + kind)
    return kinds + terms(text)


def is_cjk(text: str) -> bool:
    """Whether a text is mostly Chinese or Japanese (more such characters than Latin letters)."""
    folded = normalise(text)
    return len(_CJK_CHAR.findall(folded)) > len(_LATIN_LETTER.findall(folded))


def has_cjk(text: str) -> bool:
    """Whether a text has any Chinese or Japanese character."""
    return _CJK_CHAR.search(text) is not None


def stem(word: str) -> str:
    """A light English stemmer: enough that battery/batteries, restart/restarting/restarted,
    charge/charging/charged meet. Both sides of the match go through it, so what matters is
    consistency, not producing real words."""
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "")
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # running -> run, stopped -> stop
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]  # charge / charging / charged -> charg
    return word
