"""The GraphQL API: strawberry types, resolvers and permissions. Never imports `server`."""
