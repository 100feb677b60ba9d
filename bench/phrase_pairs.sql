-- Prototype (Postgres): two-word phrases answered exactly by the GIN index of reference_search,
-- without reading any document. Measured on a register filled by bench/fill.py (50,000 studies,
-- 150,000 references): bench/README.md, "Phrases on Postgres". The service has both halves now: the
-- pairs in its documents (search/index.py, search_pairs) and type/year/has_results/updated carried by
-- reference_search (migration 14, search.index.CARRIED); this file stays as the prototype measured.
--
-- Each adjacent pair of words of a document (positions p and p+1 of its tsvector, i.e. what
-- 'a' <-> 'b' matches) becomes one extra lexeme 'a b' of the same document. A two-word phrase is then
-- the single lexeme 'intens care', which GIN answers exactly (no recheck): same answers as
-- document @@ websearch_to_tsquery('english', '"intensive care"') for the ten two-word phrases tried.
-- Phrases of 3+ words: every pair ANDed (a superset: 9,063 for 9,029 "intensive care unit") and
-- the positional phrase, which still reads the candidates' documents.
-- The search row also carries the columns the facet count and the relevance page read, so neither
-- joins "reference" for every match, and keeps its document out of line, so the rows a bitmap
-- heap scan visits are small.

-- The adjacent pairs of a tsvector, as a tsvector of 'a b' lexemes (no positions).
CREATE FUNCTION tsvector_pairs(v tsvector) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  words text[] := '{}';
  lexeme text;
  positions smallint[];
  p integer;
  pairs text[] := '{}';
BEGIN
  FOR lexeme, positions IN SELECT u.lexeme, u.positions FROM unnest(v) AS u LOOP
    FOREACH p IN ARRAY coalesce(positions, '{}') LOOP
      words[p] := lexeme;
    END LOOP;
  END LOOP;
  IF array_lower(words, 1) IS NULL THEN
    RETURN ''::tsvector;
  END IF;
  FOR p IN array_lower(words, 1) .. array_upper(words, 1) - 1 LOOP
    IF words[p] IS NOT NULL AND words[p + 1] IS NOT NULL THEN
      pairs := pairs || (words[p] || ' ' || words[p + 1]);
    END IF;
  END LOOP;
  RETURN array_to_tsvector(pairs);
END $$;

-- The pairs of a phrase, ANDed, as a tsquery: 'intens care'; 'intens care' & 'care unit'.
-- Immutable: with a constant argument it is folded into the plan's index condition. Compose it with
-- the rest of a query with the tsquery operators (&&, ||, !!) or use it alone.
CREATE FUNCTION phrase_pairs_query(config regconfig, phrase text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(string_agg(quote_literal(pair), ' & '), '')::tsquery
  FROM unnest(tsvector_to_array(tsvector_pairs(to_tsvector(config, phrase)))) AS pair
$$;

-- The layout (a migration; then rebuild the index: toast_tuple_target applies to rows written after it).
ALTER TABLE reference_search
  ADD COLUMN type varchar(40), ADD COLUMN year integer, ADD COLUMN has_results boolean,
  ADD COLUMN updated timestamp;
ALTER TABLE reference_search SET (toast_tuple_target = 128);
ALTER TABLE reference_search ALTER COLUMN document SET STORAGE EXTERNAL,
                             ALTER COLUMN heading SET STORAGE MAIN;
-- the existing index stays the only one: CREATE INDEX reference_search_document ON reference_search USING gin (document)

-- The write (index._write): the document as today, then its pairs added to it, and the columns
-- copied from the reference row it was made from.
--   INSERT INTO reference_search (id, document, heading, type, year, has_results, updated)
--   SELECT v.id, v.document || tsvector_pairs(v.document), v.heading, r.type, r.year, r.has_results, r.updated
--   FROM (SELECT w.id, w.heading || setweight(to_tsvector('english', w.c), 'C') AS document, w.heading FROM (...)) AS v
--   JOIN "reference" AS r ON r.id = v.id

-- GET /references?q="intensive care"&facets=type,year: the facet count and the total ...
SELECT t2.type, t2.year, COUNT(t2.id)
FROM reference_search AS t2
WHERE t2.document @@ phrase_pairs_query('english', 'intensive care')
GROUP BY t2.type, t2.year;

-- ... and the page, ranked on the heading as today; "reference" read for its 21 rows only.
SELECT t1.*, top.rank
FROM "reference" AS t1
JOIN (SELECT t2.id, t2.updated,
             CAST(ts_rank(t2.heading, websearch_to_tsquery('english', '"intensive care"')) AS double precision) AS rank
      FROM reference_search AS t2
      WHERE t2.document @@ phrase_pairs_query('english', 'intensive care')
      ORDER BY rank DESC, t2.updated DESC, t2.id ASC
      LIMIT 21) AS top ON t1.id = top.id
ORDER BY top.rank DESC, top.updated DESC, top.id ASC;

-- Three words or more: the pairs narrow the candidates, the phrase checks their positions.
--   WHERE t2.document @@ (phrase_pairs_query('english', 'intensive care unit')
--                         && websearch_to_tsquery('english', '"intensive care unit"'))
