"""The incident kinds the traffic generator plays, and how each system files them.

One :class:`Kind` per canonical incident kind: its code in each system (12345 ``wtfl``,
police ``JQLBDM``, 数字城管 big/small class, 综合执法 ``Category``), who handles it in the demo,
and how often it happens. ``None`` means that system never files this kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.geo import PlaceKind

STREET_UNIT = "斜土路街道"
ENFORCEMENT_UNIT = "徐汇区城管执法局"


@dataclass(frozen=True)
class Kind:
    """A canonical incident kind and its codes in the four systems."""

    key: str
    name: str  # canonical Chinese name
    wtfl: str  # 12345 问题分类
    wtfl_near: tuple[str, ...]  # neighbour codes an operator mistypes it as
    jqlbdm: str | None  # police linkage category
    dcm: tuple[str, str] | None  # 数字城管 (bigClass, smallClass)
    zf: str | None  # 综合执法 执法事项
    unit: str  # 12345 承办单位 in the demo
    sqxz: str  # 12345 诉求性质 callers usually choose
    yjdw: str  # police 移交单位 when police hand it over
    solved_on_site: float  # share the police settle themselves (05)
    place_kind: PlaceKind | None  # where it usually happens (None: anywhere)
    weight: float  # relative frequency

    @property
    def event_type(self) -> str:
        """数字城管 eventType: 部件 codes start with 1."""
        return "1" if self.dcm and self.dcm[0].startswith("1") else "2"


KINDS: tuple[Kind, ...] = (
    Kind("street_stall", "占道经营(流动摊贩)", "0301", ("0302",), "LD01", ("05", "0501"), "CG-0201",
         STREET_UNIT, "2", "城管", 0.6, "road", 0.20),
    Kind("exposed_garbage", "暴露垃圾", "0201", ("0202", "0203"), "LD05", ("01", "0102"), None,
         STREET_UNIT, "1", "城管", 0.2, None, 0.18),
    Kind("shopfront_trading", "跨门营业(店外经营)", "0302", ("0301",), "LD01", ("05", "0504"), "CG-0201",
         ENFORCEMENT_UNIT, "2", "城管", 0.5, "road", 0.12),
    Kind("illegal_parking", "机动车乱停放", "0401", ("0402", "0403"), "LD03", ("05", "0505"), None,
         STREET_UNIT, "2", "城管", 0.8, None, 0.10),
    Kind("ground_lock", "私设地锁", "0403", ("0401", "0402"), "LD09", ("05", "0511"), None,
         ENFORCEMENT_UNIT, "2", "城管", 0.1, None, 0.07),
    Kind("social_noise", "社会生活噪声", "0502", ("0501", "0503"), "LD02", None, "CG-0501",
         STREET_UNIT, "2", "综合执法", 0.7, "compound", 0.08),
    Kind("construction_noise", "施工噪声", "0501", ("0502",), "LD02", ("03", "0301"), "CG-0502",
         ENFORCEMENT_UNIT, "2", "综合执法", 0.5, None, 0.07),
    Kind("illegal_construction", "违章搭建", "0101", ("0102",), "LD04", ("01", "0101"), "CG-0101",
         ENFORCEMENT_UNIT, "6", "综合执法", 0.0, "compound", 0.06),
    Kind("manhole_cover", "井盖缺损", "0601", ("0603", "0602"), "LD06", ("11", "1101"), None,
         STREET_UNIT, "1", "城管", 0.1, "road", 0.04),
    Kind("group_rental", "群租", "0102", ("0101",), "LD08", None, None,
         STREET_UNIT, "6", "综合执法", 0.0, "compound", 0.04),
    Kind("cooking_fumes", "餐饮油烟", "0503", ("0502",), None, None, "CG-0601",
         ENFORCEMENT_UNIT, "2", "综合执法", 0.0, "road", 0.04),
)

KINDS_BY_KEY: dict[str, Kind] = {k.key: k for k in KINDS}

JQLB_NAMES: dict[str, str] = {
    "LD01": "占道经营", "LD02": "噪声扰民", "LD03": "机动车乱停放阻碍交通", "LD04": "违章搭建",
    "LD05": "垃圾堆放焚烧", "LD06": "井盖缺失道路险情", "LD07": "邻里纠纷", "LD08": "群租隐患",
    "LD09": "私设地锁",
}

# 管辖派出所 by 街道 (police_patrol GXDWDM / GXDWMC).
POLICE_STATIONS: dict[str, tuple[str, str]] = {
    "斜土路街道": ("310104550000", "斜土路派出所"),
    "枫林路街道": ("310104560000", "枫林路派出所"),
    "徐家汇街道": ("310104510000", "徐家汇派出所"),
    "龙华街道": ("310104580000", "龙华派出所"),
}

PATROL_GROUPS = ("巡逻一组", "巡逻二组", "巡逻三组", "社区民警队", "交警徐汇支队二大队")
DCM_DEPTS: dict[str, tuple[str, ...]] = {
    "01": ("徐汇区绿化和市容管理局", "斜土路街道城运中心"),
    "03": ("徐汇区建设和管理委员会", "徐汇区城管执法局斜土中队"),
    "05": ("徐汇区城管执法局斜土中队", "斜土路街道城运中心", "徐汇区城管执法局枫林中队"),
    "11": ("徐汇区市政管理所", "上海城投水务徐汇管理所"),
}
ZF_SQUADS = ("斜土中队", "枫林中队", "徐家汇中队", "龙华中队")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程"
GIVEN_NAMES = ("建国", "秀英", "志强", "丽华", "伟", "敏", "静", "磊", "海燕", "国平", "美玲", "晓东",
               "卫东", "桂芳", "佳怡", "子轩", "浩", "雪梅", "永红", "明")
INSPECTORS = ("监督员徐卫东", "监督员陆敏", "监督员沈海燕", "监督员顾晓东")
