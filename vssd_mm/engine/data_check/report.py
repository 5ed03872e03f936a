"""What a data check found: a count per check and one ``Problem`` per defect."""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import List


@dataclass
class Problem:
    """One defect of a dataset: the file it is in, what is wrong, how to fix it."""
    file: str
    what: str
    fix: str

    def line(self) -> str:
        return f'{self.file}: {self.what} ({self.fix})'


@dataclass
class DataCheckReport:
    """Per check (e.g. 'train: images exist'): how many items were checked and how many failed;
    the problems found; notes on legitimate data that training treats specially."""
    counts: 'OrderedDict[str, List[int]]' = field(default_factory=OrderedDict)
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def count(self, check: str, checked: int, failed: int = 0) -> None:
        row = self.counts.setdefault(check, [0, 0])
        row[0] += checked
        row[1] += failed

    def add(self, file: str, what: str, fix: str) -> None:
        self.problems.append(Problem(file, what, fix))

    def table(self) -> str:
        """The counts as a text table: check | checked | problems."""
        width = max([len(c) for c in self.counts] + [5])
        lines = [f'{"check":<{width}}  {"checked":>8}  {"problems":>8}']
        lines += [f'{c:<{width}}  {n:>8}  {f:>8}' for c, (n, f) in self.counts.items()]
        return '\n'.join(lines)
