// Log alerts on the handler's own log lines. In Functions mode the handler writes every event as a
// JSON line on stdout, which the host sends to Application Insights, and the lines of a successful
// invocation again as its `Logs`; both land in the workspace's AppTraces table with the line in
// Message. The queries match the text of what handler/src logs (quoted in each rule), so a line
// counted twice only makes a count larger; every threshold is "any" or a ratio. infra/README.md
// ("Alerts") says which line each rule watches and OPERATIONS.md what to do when one fires.

@description('Region of the rules (the workspace\'s).')
param location string

@description('Tags of the rules and the action group.')
param tags object

@description('ARM id of the Log Analytics workspace behind Application Insights.')
param workspaceId string

@description('Suffix that makes the rule names unique.')
param resourceToken string

@description('Address that alert notifications go to. Empty: no action group; the alerts still fire and show in Azure Monitor.')
param alertEmail string

@minValue(1)
@maxValue(100)
@description('Share of container-group creates, in percent over 30 minutes, that ARM refuses before the create-failure alert fires (with at least 3 refusals).')
param createFailurePercent int

@minValue(1)
@maxValue(100)
@description('Share of deployments, in percent over an hour, that end Failed or TimedOut before the failed-deployment alert fires (with at least 3 such ends).')
param failedDeploymentPercent int

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-berth-${resourceToken}'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'berth'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmail) ? [] : [
  actionGroup.id
]

// Poison step messages. The host moves a `steps` message to `<queue>-poison` after
// maxDequeueCount (5) failed deliveries and logs "Message has reached MaxDequeueCount of 5. Moving
// message to queue '<queue>-poison'." (the handler's own line, "... the host now moves it to the
// poison queue", comes with it). The only queue trigger of the app is `steps`.
resource poisonRule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'berth-poison-steps-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Berth: step message poisoned'
    description: 'A step message failed every delivery and went to the poison queue: its deployment makes no progress until someone acts. See OPERATIONS.md, Alerts.'
    severity: 1
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      workspaceId
    ]
    criteria: {
      allOf: [
        {
          query: 'AppTraces | where Message contains "has reached MaxDequeueCount" and Message contains "-poison"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// ARM throttling that outlasted the client's own retries. The ARM client retries a 429 up to three
// times in all (honouring Retry-After up to 10 s) and logs those retries at debug only; an error
// that remains reads "ARM throttled the request (...)" and reaches the logs in the lines that
// report it: "create failed", "usages unreadable; admitting by BERTH_MAX_CORES alone", a sweep
// error, a failed step ("step failed and will be retried: ARM throttled ...").
resource armThrottlingRule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'berth-arm-throttling-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Berth: ARM throttling'
    description: 'ARM answered 429 to Berth\'s calls more often than its retries absorb. See OPERATIONS.md, Alerts.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      workspaceId
    ]
    criteria: {
      allOf: [
        {
          query: 'AppTraces | where Message contains "ARM throttled the request"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// Sweep errors. Each `cleanup` tick logs "sweep: <n> groups seen, <n> orphans deleted, <n>
// re-driven, <n> purged, <n> errors (past due: <bool>)" and then each error on a line of its own
// (SweepReport.errors: "listing container groups: ...", "loading deployment <id>: ...", "deleting
// orphan <name>: ...", "finding overdue deployments: ...", "re-driving <id>: ...", "finding expired
// deployments: ...", "purging <id>: ...").
resource sweepErrorsRule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'berth-sweep-errors-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Berth: sweep errors'
    description: 'The cleanup sweep reported errors: orphaned container groups may stay (and bill), overdue deployments may not be re-driven, or finished ones not purged. See OPERATIONS.md, Alerts.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    scopes: [
      workspaceId
    ]
    criteria: {
      allOf: [
        {
          query: 'AppTraces | where Message contains "orphans deleted" and Message contains " errors (past due: " | extend errors = toint(extract(@"(\\d+) errors \\(past due: ", 1, Message)) | where errors > 0'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// Failed creates (the failed-deployment rule below sees every failure; this one says early that
// ARM refuses creates). It watches what the handler logs from handler/src/driver/perform.rs (target berth::driver::perform): "create failed" (ARM refused the
// PUT of a container group for a reason other than capacity or ACI's quota) against "container
// group created". Containers that exit non-zero, time out or are evicted are not seen here.
resource createFailuresRule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'berth-create-failures-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Berth: container-group creates failing'
    description: 'ARM refused a large share of container-group creates: deployments are failing at create. See OPERATIONS.md, Alerts.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    scopes: [
      workspaceId
    ]
    criteria: {
      allOf: [
        {
          query: format('AppTraces | where Message contains "berth::driver::perform" | summarize failed = countif(Message contains "create failed"), created = countif(Message contains "container group created") | extend percent = 100.0 * failed / max_of(failed + created, 1) | where failed >= 3 and percent >= {0}', createFailurePercent)
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

// Failed deployments. The handler logs one line when a deployment's status becomes terminal, from
// handler/src/driver/step.rs: "deployment ended: <status>" (Succeeded, Failed, TimedOut or
// Terminated), with deployment.id. The rule compares the Failed and TimedOut ends with all ends.
resource failedDeploymentsRule 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'berth-failed-deployments-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Berth: deployments failing'
    description: 'A large share of deployments ended Failed or TimedOut in the last hour. See OPERATIONS.md, Alerts.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    scopes: [
      workspaceId
    ]
    criteria: {
      allOf: [
        {
          query: format('AppTraces | where Message contains "deployment ended: " | summarize ended = count(), failed = countif(Message contains "deployment ended: Failed" or Message contains "deployment ended: TimedOut") | extend percent = 100.0 * failed / max_of(ended, 1) | where failed >= 3 and percent >= {0}', failedDeploymentPercent)
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}

@description('Names of the alert rules.')
output ruleNames array = [
  poisonRule.name
  armThrottlingRule.name
  sweepErrorsRule.name
  createFailuresRule.name
  failedDeploymentsRule.name
]
