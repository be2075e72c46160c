/**
 * The bad-input corpus's cases for chillybin's v1 `GET /pick` (see bad-inputs.ts): its query
 * string and methods. Deleted with v1.
 */
import { type BadInput, chillybin, get, method, q } from "./bad-inputs";

export const CORPUS_PICK_V1: BadInput[] = [
  chillybin("pick: no parameters", get("/pick"), 400),
  chillybin("pick: quantity without a name", get("/pick?quantity=1"), 400),
  chillybin(
    "pick: negative quantity (the original added stock)",
    get("/pick?name=cheese&quantity=-5"),
    400,
  ),
  chillybin("pick: zero quantity", get("/pick?name=cheese&quantity=0"), 400),
  chillybin("pick: quantity above 100", get("/pick?name=cheese&quantity=101"), 400),
  chillybin("pick: float quantity", get("/pick?name=cheese&quantity=1.5"), 400),
  chillybin("pick: quantity 1e3", get("/pick?name=cheese&quantity=1e3"), 400),
  chillybin(
    "pick: quantity beyond 2^64",
    get("/pick?name=cheese&quantity=99999999999999999999999"),
    400,
  ),
  chillybin("pick: empty quantity", get("/pick?name=cheese&quantity="), 400),
  chillybin("pick: hexadecimal quantity", get("/pick?name=cheese&quantity=0x10"), 400),
  chillybin("pick: quantity with a leading plus", get("/pick?name=cheese&quantity=%2B1"), 400),
  chillybin("pick: quantity given twice", get("/pick?name=cheese&quantity=1&quantity=1"), 400),
  chillybin("pick: name given twice", get("/pick?name=cheese&name=bread"), 400),
  chillybin("pick: name as an array (name[]=)", get("/pick?name[]=cheese"), 400),
  chillybin("pick: name as an object (name[a]=)", get("/pick?name[a]=cheese"), 400),
  chillybin(
    "pick: query nested deeper than the parser allows",
    get("/pick?name[a][b][c][d][e][f][g]=x"),
    400,
  ),
  chillybin(
    "pick: SQL metacharacters in the name",
    get(`/pick?name=${q("cheese'; DROP TABLE ingredients; --")}`),
    400,
  ),
  chillybin("pick: NUL byte in the name", get("/pick?name=cheese%00"), 400),
  chillybin("pick: 10 KB name", get(`/pick?name=${"a".repeat(10 * 1024)}`), 400),
  chillybin("pick: upper-case name", get("/pick?name=Cheese"), 400),
  chillybin("pick: non-ASCII name", get(`/pick?name=${q("fromagé")}`), 400),
  chillybin("pick: broken percent-encoding", get("/pick?name=%ZZ"), 400),
  chillybin("pick: unknown parameter", get("/pick?name=cheese&free=yes"), 400),
  chillybin("pick: unknown ingredient", get("/pick?name=caviar&quantity=1"), 422),
  chillybin("pick: POST", method("POST", "/pick?name=cheese"), 405),
  chillybin("pick: HEAD never picks", method("HEAD", "/pick?name=cheese"), 405),
  chillybin("pick: DELETE", method("DELETE", "/pick?name=cheese"), 405),

  chillybin(
    "problem even when the client asks for HTML",
    get("/pick", { Accept: "text/html" }),
    400,
  ),
];
