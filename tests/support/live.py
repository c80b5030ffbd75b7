"""Live progress: the deploymentProgress subscription and the KPI fields it carries."""

PROGRESS = """
subscription($id: ID!) {
  deploymentProgress(deliveryId: $id) {
    status at
    delivery { id status }
    kpis { toSend processed sent pending failed deliveredRate bouncesAndErrorsRate
           opens clicks openRate clickThroughRate }
  }
}
"""


KPI_FIELDS = [
    "toSend",
    "processed",
    "sent",
    "pending",
    "failed",
    "deliveredRate",
    "bouncesAndErrorsRate",
    "opens",
    "clicks",
    "openRate",
    "clickThroughRate",
]
