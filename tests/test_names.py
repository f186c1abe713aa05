import pytest
from conftest import HOST

from pydist import Node, PydistError
from pydist._names import NO_NODE, parse


def test_a_bare_name_is_a_short_name_on_this_host():
    n = parse("gus")
    assert (n.full, n.long) == (f"gus@{HOST}", False)
    assert n.address() == "127.0.0.1"


def test_a_name_with_a_dotted_host_is_a_long_name():
    n = parse("gus@127.0.0.1")
    assert (n.full, n.long, n.address()) == ("gus@127.0.0.1", True, "127.0.0.1")
    assert parse("gus@host.example").long


def test_this_hosts_short_name_is_a_short_name():
    assert parse(f"gus@{HOST}").long is False


@pytest.mark.parametrize("bad", ["", "@vm", "gus@", "g us", "gus@@vm", "gu$", "a@b c",
                                 "x" * 65, "gus@-bad.host"])
def test_malformed_names_are_refused_with_an_example(bad):
    with pytest.raises(ValueError, match="e.g.|nothing after"):
        parse(bad)


def test_a_long_name_needs_a_host():
    with pytest.raises(ValueError, match="long name needs a host"):
        parse("gus", long=True)


def test_a_short_name_has_no_dots_in_its_host():
    with pytest.raises(ValueError, match="short"):
        parse("gus@a.b", long=False)


@pytest.mark.parametrize("bad", [None, 42, b"gus", ["gus"]])
def test_names_must_be_strings(bad):
    with pytest.raises(TypeError, match="node name is a string"):
        parse(bad)


def test_node_self_before_start_is_nonode_at_nohost():
    assert Node.self() == NO_NODE == "nonode@nohost"
    assert Node.alive() is False
    assert Node.list() == []


def test_node_start_refuses_a_malformed_name_and_stays_down():
    with pytest.raises(ValueError):
        Node.start("not a name")
    assert not Node.alive()


def test_node_functions_check_their_node_arguments(node):
    for fn in (Node.ping, Node.connect, Node.disconnect, Node.monitor):
        with pytest.raises(TypeError):
            fn(42)
        with pytest.raises(ValueError, match="name@host"):
            fn("justaname")


def test_what_needs_a_node_says_to_start_one():
    with pytest.raises(PydistError, match=r"Node.start"):
        Node.connect(f"b@{HOST}")
