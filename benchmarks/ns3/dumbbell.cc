// The dumbbell benchmarks/emulation.py compares wtlab's emulator with: one TCP CUBIC bulk
// flow across one bottleneck (rate, one-way delay, drop-tail buffer in packets) for a
// number of simulated seconds. Prints "packets <n> wall_s <s> sim_s <s>", where packets
// are those the bottleneck link transmitted (sender to receiver) and wall_s the wall time
// of Simulator::Run alone. Written for wtlab (not taken from ns-3's examples).
#include <chrono>
#include <cstdio>
#include <string>

#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/traffic-control-module.h"

using namespace ns3;

static uint64_t g_sent = 0;

static void
OnTxEnd(Ptr<const Packet>)
{
    ++g_sent;
}

int
main(int argc, char* argv[])
{
    std::string rate = "100Mbps";
    double oneWayMs = 10.0;
    uint32_t bufferPackets = 167;
    double simS = 10.0;
    CommandLine cmd;
    cmd.AddValue("rate", "bottleneck rate", rate);
    cmd.AddValue("delayMs", "one-way propagation delay, ms", oneWayMs);
    cmd.AddValue("buffer", "drop-tail buffer, packets", bufferPackets);
    cmd.AddValue("simS", "simulated seconds", simS);
    cmd.Parse(argc, argv);

    Config::SetDefault("ns3::TcpL4Protocol::SocketType", TypeIdValue(TcpCubic::GetTypeId()));
    Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(1448));
    Config::SetDefault("ns3::TcpSocket::SndBufSize", UintegerValue(1 << 24));
    Config::SetDefault("ns3::TcpSocket::RcvBufSize", UintegerValue(1 << 24));

    NodeContainer nodes;
    nodes.Create(2);
    PointToPointHelper link;
    link.SetDeviceAttribute("DataRate", StringValue(rate));
    link.SetChannelAttribute("Delay", TimeValue(MilliSeconds(oneWayMs)));
    link.SetQueue("ns3::DropTailQueue",
                  "MaxSize", QueueSizeValue(QueueSize(std::to_string(bufferPackets) + "p")));
    NetDeviceContainer devices = link.Install(nodes);

    InternetStackHelper stack;
    stack.Install(nodes);
    Ipv4AddressHelper addresses;
    addresses.SetBase("10.1.1.0", "255.255.255.0");
    Ipv4InterfaceContainer ifaces = addresses.Assign(devices);
    // the device's drop-tail queue is the bottleneck buffer: no queue disc in front of it
    // (Assign installed the default one)
    TrafficControlHelper tc;
    tc.Uninstall(devices);

    uint16_t port = 5000;
    BulkSendHelper source("ns3::TcpSocketFactory", InetSocketAddress(ifaces.GetAddress(1), port));
    source.SetAttribute("MaxBytes", UintegerValue(0));
    ApplicationContainer sender = source.Install(nodes.Get(0));
    sender.Start(Seconds(0.0));
    PacketSinkHelper sink("ns3::TcpSocketFactory", InetSocketAddress(Ipv4Address::GetAny(), port));
    ApplicationContainer receiver = sink.Install(nodes.Get(1));
    receiver.Start(Seconds(0.0));

    devices.Get(0)->TraceConnectWithoutContext("PhyTxEnd", MakeCallback(&OnTxEnd));
    Simulator::Stop(Seconds(simS));
    auto t0 = std::chrono::steady_clock::now();
    Simulator::Run();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Simulator::Destroy();
    std::printf("packets %llu wall_s %.6f sim_s %.3f\n", (unsigned long long)g_sent, wall, simS);
    return 0;
}
