"""Emergency levels of the national cyber-security incident plan (国家网络安全事件应急预案)."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """Event level I (most severe) to IV."""

    I = "I"  # noqa: E741 - the plan's own numbering
    II = "II"
    III = "III"
    IV = "IV"

    @property
    def rank(self) -> int:
        """1 for I ... 4 for IV (lower is more severe)."""
        return ("I", "II", "III", "IV").index(self.value) + 1

    @property
    def name_zh(self) -> str:
        """特别重大 / 重大 / 较大 / 一般."""
        return {"I": "特别重大", "II": "重大", "III": "较大", "IV": "一般"}[self.value]

    @property
    def colour(self) -> str:
        """Warning colour: red / orange / yellow / blue."""
        return {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}[self.value]

    @property
    def colour_zh(self) -> str:
        """红色 / 橙色 / 黄色 / 蓝色 (预警)."""
        return {"I": "红色", "II": "橙色", "III": "黄色", "IV": "蓝色"}[self.value]

    @property
    def must_report(self) -> bool:
        """Events of 较大 (III) and above must be reported to the authorities."""
        return self.rank <= 3


# 国家网络安全事件报告管理办法: reporting deadline after the event, by kind of operator.
REPORT_DEADLINE_SECONDS: dict[str, float] = {"cii": 3600.0, "state": 7200.0, "other": 14400.0}
REPORT_CATEGORY_ZH: dict[str, str] = {
    "cii": "关键信息基础设施",
    "state": "中央和国家机关",
    "other": "其他单位",
}
