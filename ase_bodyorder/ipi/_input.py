"""Reading and rewriting i-PI input files (``input.xml``, ``RESTART``) for a run."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from ..expansion import BodyOrderError
from ..runs import EXTRAS_TRAJECTORIES, PREFIX

#: properties written when the input asks for none
DEFAULT_PROPERTIES = (
    "step",
    "time{picosecond}",
    "conserved{electronvolt}",
    "temperature{kelvin}",
    "kinetic_md{electronvolt}",
    "potential{electronvolt}",
)


class InputError(BodyOrderError):
    """The i-PI input cannot be run as a body-order case."""


def element_text(element: ET.Element | None) -> str:
    """The stripped text of ``element`` ("" if absent)."""
    return "" if element is None or element.text is None else element.text.strip()


def set_text(parent: ET.Element, tag: str, value) -> ET.Element:
    """Set the text of ``parent``'s child ``tag``, creating it if needed."""
    element = parent.find(tag)
    if element is None:
        element = ET.SubElement(parent, tag)
    element.text = f" {value} "
    return element


def bead_count(root: ET.Element) -> int:
    """Number of beads of a fresh input (``initialize``) or a RESTART (``beads``)."""
    for path in ("system/initialize", "system/beads"):
        element = root.find(path)
        if element is not None and element.get("nbeads"):
            return int(element.get("nbeads"))
    return 1


def current_step(root: ET.Element) -> int:
    """i-PI's step counter stored in a RESTART/checkpoint (0 in a fresh input)."""
    return int(float(element_text(root.find("step")) or 0))


def ffsocket(root: ET.Element) -> ET.Element:
    """The one ``<ffsocket>`` of the input."""
    sockets = root.findall("ffsocket")
    if len(sockets) != 1:
        raise InputError(f"the input needs exactly one <ffsocket>, it has {len(sockets)}")
    return sockets[0]


def rewrite_input(
    root: ET.Element, *, total_steps: int, address: str, stride: int, n_drivers: int
) -> None:
    """Steps, prefix, socket, batching and the extras trajectories, in place."""
    set_text(root, "total_steps", total_steps)
    output = root.find("output")
    if output is None:
        output = ET.SubElement(root, "output")
    output.set("prefix", PREFIX)
    for trajectory in output.findall("trajectory"):
        extra_type = trajectory.get("extra_type", "")
        if element_text(trajectory) == "extras" and extra_type.startswith("body_order"):
            output.remove(trajectory)
    for name, extra_type in EXTRAS_TRAJECTORIES.items():
        element = ET.SubElement(
            output, "trajectory", filename=name, stride=str(stride), extra_type=extra_type
        )
        element.text = " extras "
    standard_outputs(output, stride)
    if bead_count(root) > 1:
        centroid_output(output, stride)
    socket_ = ffsocket(root)
    socket_.set("mode", "unix")
    set_text(socket_, "address", address)
    beads = bead_count(root)
    batch = socket_.find("batch_size")
    if beads > 1:
        set_text(socket_, "batch_size", math.ceil(beads / n_drivers))
    elif batch is not None:
        socket_.remove(batch)


def standard_outputs(output: ET.Element, stride: int) -> None:
    """Properties in ``out`` (every step), positions in ``pos`` (extxyz, every ``stride``
    steps) and a checkpoint ``chk``, whatever else the input writes."""
    properties = output.find("properties")
    if properties is None:
        properties = ET.SubElement(output, "properties")
        properties.text = f" [ {', '.join(DEFAULT_PROPERTIES)} ] "
    properties.set("filename", "out")
    properties.set("stride", "1")
    positions = [t for t in output.findall("trajectory") if element_text(t).startswith("positions")]
    if not positions:
        positions = [ET.SubElement(output, "trajectory")]
    positions[0].attrib.update(filename="pos", stride=str(stride), format="ase")
    positions[0].text = " positions "
    if output.find("checkpoint") is None:
        ET.SubElement(output, "checkpoint", filename="chk", stride="10", overwrite="true")
    output.find("checkpoint").set("filename", "chk")


def centroid_output(output: ET.Element, stride: int) -> None:
    """Centroid positions in ``xc`` (extxyz, every ``stride`` steps, the monitored ones),
    for the centroid's expansion (:mod:`ase_bodyorder.monitor.pimd`)."""
    centroid = [t for t in output.findall("trajectory") if element_text(t) == "x_centroid"]
    element = centroid[0] if centroid else ET.SubElement(output, "trajectory")
    element.attrib.update(filename="xc", stride=str(stride), format="ase")
    element.text = " x_centroid "


def property_columns(root: ET.Element) -> tuple[str, ...]:
    """Names (without units) of the columns of the properties file."""
    text = element_text(root.find("output/properties")).strip("[] \n")
    return tuple(re.sub(r"\{.*?\}", "", name).strip() for name in text.split(","))


def structure_element(root: ET.Element) -> ET.Element | None:
    return root.find("system/initialize/file")


def structure_file(root: ET.Element) -> str | None:
    element = structure_element(root)
    return None if element is None else element_text(element)


def bead_files(stem: str, nbeads: int, suffix: str = "") -> tuple[str, ...]:
    """i-PI's per-bead file names: ``stem_<bead>``, zero-padded as i-PI pads them."""
    digits = int(1 + math.floor(math.log(nbeads) / math.log(10)))
    return tuple(f"{stem}_{b:0{digits}d}{suffix}" for b in range(nbeads))


def sockets_prefix(root: ET.Element) -> str:
    return root.get("sockets_prefix", "/tmp/ipi_")
