from ._typecheck import check_fields as check_fields
