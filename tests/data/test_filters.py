from __future__ import annotations

from minibase.data.filters import FALSE, TRUE, And, Cmp, In, Not, Or, bind_owner, conj, disj

U = ("uid",)
A = Cmp(("a",), "eq", 1)


def test_conj_disj_fold() -> None:
    assert conj() == TRUE and disj() == FALSE
    assert conj(TRUE, A) == A and conj(A, FALSE) == FALSE
    assert disj(FALSE, A) == A and disj(A, TRUE) == TRUE
    assert conj(A, conj(A, A)) == And((A, A, A))


def test_bind_owner() -> None:
    assert bind_owner(Cmp(U, "eq", "me"), "me") == TRUE
    assert bind_owner(Cmp(U, "eq", "me"), "you") == FALSE
    assert bind_owner(Cmp(U, "ne", "me"), "me") == FALSE
    assert bind_owner(In(U, ("a", "me")), "me") == TRUE
    assert bind_owner(Or((Cmp(U, "eq", "me"), A)), "you") == A
    assert bind_owner(Or((Cmp(U, "eq", "me"), A)), "me") == TRUE
    assert bind_owner(Not(Cmp(U, "eq", "me")), "me") == FALSE
    assert bind_owner(Not(And((Cmp(U, "eq", "me"), A))), "me") == Not(A)
    assert bind_owner(A, "me") == A
